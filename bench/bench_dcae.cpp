// The Video DC-AE's depthwise 3-D convolutions: vvae's kernel against oneDNN's grouped
// convolution (groups == channels), at the sizes of dc-ae-f32t4c128 on a 256 px tile:
//   k5: LiteMLA aggregation, 3 * width channels (stage 3: 1536 at 32x32, stages 4-5: 3072 at 16x16)
//   k3: GLUMBConv depth_conv, 8 * width channels (stage 3: 4096 at 32x32, stages 4-5: 8192 at
//   16x16)
// with 8 frames (the model runs stage 3 at 32 frames, stage 4 at 16 and stage 5 at 8 per tile).
//   build/bench/vvae_bench_ops --benchmark_filter=Depthwise
#include <benchmark/benchmark.h>

#include "core/random.hpp"
#include "ops/conv.hpp"
#include "ops/depthwise.hpp"

namespace vvae {
namespace {

Tensor random_values(const Shape& shape, uint64_t seed) {
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = 2.0f * uniform_at(seed, static_cast<uint64_t>(i)) - 1.0f;
  return t;
}

struct Case {
  Tensor x, weight, bias;
  double flops = 0;
};

// Args: kernel, channels, spatial size S, frames T.
Case make_case(const benchmark::State& state) {
  const int64_t k = state.range(0), c = state.range(1), s = state.range(2), t = state.range(3);
  Case out{random_values({1, t, s, s, c}, 1), random_values({c, 1, k, k, k}, 2),
           random_values({c}, 3)};
  out.flops = 2.0 * static_cast<double>(k * k * k * c * t * s * s);
  return out;
}

void report(benchmark::State& state, double flops) {
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void BM_DepthwiseVvae(benchmark::State& state) {
  const Case c = make_case(state);
  const DepthwiseConv3d conv(c.weight, c.bias);
  for (auto _ : state) benchmark::DoNotOptimize(conv(c.x));
  report(state, c.flops);
}

void BM_DepthwiseOneDnn(benchmark::State& state) {
  const Case c = make_case(state);
  ConvGeometry g = ConvGeometry::uniform(3, 1, state.range(0) / 2);
  g.groups = state.range(1);
  const Conv conv(c.weight, c.bias, g);
  conv(c.x);  // creates the primitive and packs the weights outside the timing
  for (auto _ : state) benchmark::DoNotOptimize(conv(c.x));
  report(state, c.flops);
}

void sizes(benchmark::internal::Benchmark* b) {
  b->Args({5, 1536, 32, 8})
      ->Args({5, 3072, 16, 8})
      ->Args({3, 4096, 32, 8})
      ->Args({3, 8192, 16, 8})
      ->ArgNames({"k", "C", "S", "T"})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}
BENCHMARK(BM_DepthwiseVvae)->Apply(sizes);
BENCHMARK(BM_DepthwiseOneDnn)->Apply(sizes)->Iterations(2);

}  // namespace
}  // namespace vvae
