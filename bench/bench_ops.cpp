// Google Benchmark for the hot kernels, at the sizes of the full-size Flux AE decoder.
//   build/bench/vvae_bench_ops --benchmark_filter=Conv
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <dnnl.hpp>
#include <string>

#include "core/random.hpp"
#include "ops/attention.hpp"
#include "ops/conv.hpp"
#include "ops/gemm.hpp"
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

// 3x3 convolution, C -> C, on an S x S frame, direct (oneDNN, arg 0) or Winograd (vvae, arg 1).
// GFLOP/s counts the direct convolution's FLOPs, so Winograd's rate can exceed the FMA peak.
void BM_Conv3x3(benchmark::State& state) {
  const int64_t c = state.range(0), s = state.range(1);
  const ComputeScope mode(
      {Precision::kFp32, state.range(2) == 0 ? ConvAlgorithm::kDirect : ConvAlgorithm::kWinograd});
  const Conv conv(random({c, c, 3, 3}, 1), random({c}, 2), ConvGeometry::uniform(2, 1, 1));
  const Tensor x = random({1, s, s, c}, 3);
  for (auto _ : state) benchmark::DoNotOptimize(conv(x));
  const double flops = 2.0 * static_cast<double>(c * c * 9 * s * s);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Conv3x3)
    ->ArgNames({"c", "s", "winograd"})
    ->ArgsProduct({{512}, {32, 64}, {0, 1}})
    ->ArgsProduct({{256}, {128}, {0, 1}})
    ->ArgsProduct({{128}, {256}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

// The 3-D convolutions of the video families at their sizes (C channels, T frames of S x S): a
// 3x3x3 stride-1 layer (vvae's default: Winograd, arg 0 = 1) and a 3x3x3 downsampling layer with
// spatial stride 2 and C -> 2C channels (tap-wise products, arg 0 = 2). GFLOP/s counts the direct
// convolution's FLOPs.
void BM_Conv3d(benchmark::State& state) {
  const bool strided = state.range(0) == 2;
  const int64_t c = state.range(1), t = state.range(2), s = state.range(3);
  const int64_t out = strided ? 2 * c : c;
  ConvGeometry g = ConvGeometry::uniform(3, 1, 1);
  if (strided) g.stride = {1, 2, 2};
  const Conv conv(random({out, c, 3, 3, 3}, 1), random({out}, 2), g);
  const Tensor x = random({1, t, s, s, c}, 3);
  for (auto _ : state) benchmark::DoNotOptimize(conv(x));
  const int64_t pixels = strided ? t * (s / 2) * (s / 2) : t * s * s;
  const double flops = 2.0 * static_cast<double>(out * c * 27 * pixels);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Conv3d)
    ->ArgNames({"kind", "c", "t", "s"})
    ->Args({1, 512, 8, 32})
    ->Args({1, 128, 8, 128})
    ->Args({1, 256, 8, 64})
    ->Args({2, 256, 8, 64})
    ->Args({2, 512, 8, 32})
    ->Unit(benchmark::kMillisecond);

// The products inside a Winograd convolution, 36 points of a block of T tiles against packed
// filter panels (K input channels, N output channels), through each candidate library: LIBXSMM
// (what vvae uses, on its 32-channel packed panels), oneDNN's sgemm, and OpenBLAS's and BLIS's
// cblas_sgemm where Debian's serial builds are installed (loaded with dlopen: both define
// cblas_sgemm; libopenblas-serial-dev, libblis-serial-dev). One thread, as each thread of a
// convolution runs its own products.
using CblasSgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*,
                            int, float, float*, int);
CblasSgemm load_cblas(const char* path) {
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  return lib != nullptr ? reinterpret_cast<CblasSgemm>(dlsym(lib, "cblas_sgemm")) : nullptr;
}
enum class GemmLibrary { kLibxsmm, kOnednn, kOpenblas, kBlis };
void BM_WinogradProducts(benchmark::State& state) {
  const auto library = static_cast<GemmLibrary>(state.range(0));
  const int64_t k = state.range(1), n = state.range(2), t = state.range(3), points = 36;
  static const CblasSgemm openblas =
      load_cblas("/usr/lib/x86_64-linux-gnu/openblas-serial/libopenblas.so.0");
  static const CblasSgemm blis = load_cblas("/usr/lib/x86_64-linux-gnu/blis-serial/libblis.so.4");
  const CblasSgemm cblas = library == GemmLibrary::kOpenblas ? openblas
                           : library == GemmLibrary::kBlis   ? blis
                                                             : nullptr;
  if ((library == GemmLibrary::kOpenblas || library == GemmLibrary::kBlis) && cblas == nullptr) {
    state.SkipWithError("library not installed");
    return;
  }
  set_num_threads(1);
  const int64_t panels = n / 32;
  const Tensor u = random({points, panels, k, 32}, 1), v = random({points, t, k}, 2);
  Tensor m = Tensor::empty({points, t, n});
  const BatchGemm gemm(32, t, k, k, n);
  const auto i = [](int64_t x) { return static_cast<int>(x); };
  for (auto _ : state) {
    for (int64_t p = 0; p < points; ++p) {
      const float* b = v.data() + p * t * k;
      float* c = m.data() + p * t * n;
      const float* w = u.data() + p * k * n;  // the others take the filters as one K x N matrix
      if (library == GemmLibrary::kOnednn) {
        dnnl_sgemm('N', 'N', t, n, k, 1.0f, b, k, w, n, 0.0f, c, n);
      } else if (cblas != nullptr) {
        cblas(101, 111, 111, i(t), i(n), i(k), 1.0f, b, i(k), w, i(n), 0.0f, c, i(n));
      } else {
        for (int64_t f = 0; f < panels; ++f) {
          const float* a = u.data() + (p * panels + f) * k * 32;
          gemm(&a, &b, 1, c + f * 32);
        }
      }
    }
  }
  set_num_threads(0);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(points * t * k * n),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_WinogradProducts)
    ->ArgNames({"library", "k", "n", "tiles"})
    ->ArgsProduct({{0, 1, 2, 3}, {128, 256, 512}, {128, 512}, {32, 64}})
    ->Unit(benchmark::kMillisecond);

// The products of a Winograd layer as vvae lays them out: one block of T tiles, 8 frames, `taps`
// temporal taps (1: a 2-D layer), one filter block of 32 output channels, K input channels, 36
// points over every output frame. Input channels are cut into chunks of `chunk` (a divisor of
// K), each stored as its own (tiles x chunk) panel and run as one call that sums the taps and
// accumulates into C.
void BM_WinogradProductsChunked(benchmark::State& state) {
  const int64_t k = state.range(0), t = state.range(1), chunk = state.range(2),
                taps = state.range(3), frames = 8, points = 36;
  set_num_threads(1);
  const int64_t pv = t * k + 16, pu = k * 32 + 16, pm = t * 32 + 16;
  const Tensor u = random({taps * points * pu}, 1), v = random({frames * points * pv}, 2);
  Tensor m = Tensor::empty({points * pm});
  const BatchGemm first(32, t, chunk, chunk, 32, false, 32),
      rest(32, t, chunk, chunk, 32, true, 32);
  for (auto _ : state) {
    for (int64_t ot = 0; ot < frames; ++ot)
      for (int64_t p = 0; p < points; ++p)
        for (int64_t c0 = 0; c0 < k; c0 += chunk) {
          const float* a[BatchGemm::kMaxBatch];
          const float* b[BatchGemm::kMaxBatch];
          for (int64_t tap = 0; tap < taps; ++tap) {
            const int64_t f = std::clamp<int64_t>(ot + tap - taps / 2, 0, frames - 1);
            a[tap] = u.data() + (tap * points + p) * pu + c0 * 32;
            b[tap] = v.data() + (f * points + p) * pv + c0 * t;
          }
          (c0 == 0 ? first : rest)(a, b, taps, m.data() + p * pm);
        }
  }
  set_num_threads(0);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(frames * points * taps * t * k * 32),
      benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_WinogradProductsChunked)
    ->ArgNames({"k", "tiles", "chunk", "taps"})
    ->ArgsProduct({{512}, {64}, {512, 256, 128, 64, 32}, {1, 3}})
    ->ArgsProduct({{256}, {64}, {256, 64}, {3}})
    ->ArgsProduct({{128}, {32}, {128, 64}, {1, 3}})
    ->Unit(benchmark::kMillisecond);

// A candidate for CPUs with AMX (Sapphire Rapids on): the same products as BM_WinogradProducts
// in bf16 on AMX through oneDNN's batched matmul (36 points per call), each float32 operand
// split into bf16 terms so that the sum keeps float32 accuracy: 3 terms each and the 6 products
// above 2^-24 (split 6), or 2 terms each and 3 products (split 3, ~2^-16 per product). K grows
// by the split; GFLOP/s counts the float32 products, comparable with BM_WinogradProducts. The
// split of the operands is not timed. Skipped where oneDNN has no AMX kernel.
void BM_WinogradProductsAmxSplit(benchmark::State& state) {
  const int64_t split = state.range(0), k = state.range(1), n = state.range(2), t = state.range(3),
                points = 36;
  using dnnl::memory;
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc src({points, t, k * split}, memory::data_type::bf16, memory::format_tag::abc);
  const memory::desc weights({points, k * split, n}, memory::data_type::bf16,
                             memory::format_tag::any);
  const memory::desc dst({points, t, n}, memory::data_type::f32, memory::format_tag::abc);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights, dst), engine);
  const std::string impl = pd.impl_info_str();
  if (impl.find("amx") == std::string::npos) {
    state.SkipWithError(("no AMX kernel: oneDNN picks " + impl).c_str());
    return;
  }
  set_num_threads(1);
  memory a(src, engine), b(pd.weights_desc(), engine), c(dst, engine);
  std::memset(a.get_data_handle(), 0x3c, src.get_size());
  std::memset(b.get_data_handle(), 0x3c, pd.weights_desc().get_size());
  const dnnl::matmul products(pd);
  for (auto _ : state) {
    products.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
    stream.wait();
  }
  set_num_threads(0);
  state.SetLabel(impl);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(points * t * k * n),
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_WinogradProductsAmxSplit)
    ->ArgNames({"split", "k", "n", "tiles"})
    ->ArgsProduct({{6, 3}, {128}, {128}, {32, 64, 128}})
    ->ArgsProduct({{6, 3}, {512}, {512}, {32, 64, 128}})
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
