// Google Benchmark for the hot kernels, at the sizes of the full-size Flux AE decoder.
//   build/bench/vvae_bench_ops --benchmark_filter=Conv
#include <benchmark/benchmark.h>

#include <cmath>

#include "core/random.hpp"
#include "ops/attention.hpp"
#include "ops/conv.hpp"
#include "ops/norm.hpp"
#include "ops/resample.hpp"

namespace vvae {
namespace {

Tensor random(const Shape& shape, uint64_t seed) {
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = 2.0f * uniform_at(seed, static_cast<uint64_t>(i)) - 1.0f;
  return t;
}

// 3x3 convolution, C -> C, on an S x S frame.
void BM_Conv3x3(benchmark::State& state) {
  const int64_t c = state.range(0), s = state.range(1);
  const Conv conv(random({c, c, 3, 3}, 1), random({c}, 2), ConvGeometry::uniform(2, 1, 1));
  const Tensor x = random({1, s, s, c}, 3);
  for (auto _ : state) benchmark::DoNotOptimize(conv(x));
  const double flops = 2.0 * static_cast<double>(c * c * 9 * s * s);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Conv3x3)
    ->Args({512, 32})
    ->Args({512, 64})
    ->Args({256, 128})
    ->Args({128, 256})
    ->Unit(benchmark::kMillisecond);

void BM_GroupNormSilu(benchmark::State& state) {
  const int64_t c = state.range(0), s = state.range(1);
  const Tensor x = random({1, s, s, c}, 4), g = random({c}, 5), b = random({c}, 6);
  for (auto _ : state) benchmark::DoNotOptimize(group_norm(x, g, b, 32, 1e-6f, Activation::kSilu));
  state.SetBytesProcessed(state.iterations() * x.bytes() * 2);
}
BENCHMARK(BM_GroupNormSilu)->Args({512, 64})->Args({128, 256})->Unit(benchmark::kMillisecond);

void BM_Attention(benchmark::State& state) {
  const int64_t l = state.range(0), d = state.range(1);
  const Tensor q = random({1, l, d}, 7), k = random({1, l, d}, 8), v = random({1, l, d}, 9);
  for (auto _ : state)
    benchmark::DoNotOptimize(attention(q, k, v, 1.0f / std::sqrt(static_cast<float>(d))));
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * static_cast<double>(l * l * d),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Attention)->Args({1024, 512})->Args({4096, 512})->Unit(benchmark::kMillisecond);

void BM_UpsampleNearest(benchmark::State& state) {
  const int64_t c = state.range(0), s = state.range(1);
  const Tensor x = random({1, s, s, c}, 10);
  for (auto _ : state) benchmark::DoNotOptimize(upsample_nearest(x, {2, 2}));
  state.SetBytesProcessed(state.iterations() * x.bytes() * 5);
}
BENCHMARK(BM_UpsampleNearest)->Args({512, 64})->Args({256, 128})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vvae
