#include "fma_peak.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>

#include "core/cpu.hpp"

namespace vvae::bench {
namespace {

constexpr long kIterations = 100'000'000;
constexpr int kChains = 12;

// 12 independent accumulator chains hide the FMA latency (4 cycles x 2 units needs 8). All of
// them are summed into the result, so none can be elided; tests/check_fma_loop.py checks that
// the compiled loop keeps 12 distinct accumulators.
__attribute__((target("avx512f"))) float fma_loop_avx512(long iterations) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iterations; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  float out[16];
  _mm512_storeu_ps(out, sum);
  float total = 0;
  for (const float v : out) total += v;
  return total;
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(long iterations) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iterations; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, sum);
  float total = 0;
  for (const float v : out) total += v;
  return total;
}

// No FMA below AVX2: a multiply and an add per step, counted as the same 2 FLOP.
__attribute__((noinline)) float mul_add_loop_sse(long iterations) {
  __m128 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm_set1_ps(static_cast<float>(i));
  const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
  for (long it = 0; it < iterations; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], a), b);
  __m128 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm_add_ps(sum, acc[i]);
  float out[4];
  _mm_storeu_ps(out, sum);
  return out[0] + out[1] + out[2] + out[3];
}

float run_loop(Isa isa, long iterations) {
  switch (isa) {
    case Isa::kAvx512:
      return fma_loop_avx512(iterations);
    case Isa::kAvx2:
      return fma_loop_avx2(iterations);
    case Isa::kSse41:
      break;
  }
  return mul_add_loop_sse(iterations);
}

}  // namespace

FmaProbeInfo fma_probe_info() {
  switch (cpu_isa()) {
    case Isa::kAvx512:
      return {"avx512", 16, kChains, 2};
    case Isa::kAvx2:
      return {"avx2", 8, kChains, 2};
    case Isa::kSse41:
      break;
  }
  return {"sse41", 4, kChains, 2};
}

double measure_fma_once(int threads, long iterations) {
  const Isa isa = cpu_isa();
  const FmaProbeInfo info = fma_probe_info();
  volatile float sink = 0;
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
  {
    const float v = run_loop(isa, iterations);
#pragma omp critical
    sink = sink + v;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(info.flop_per_step) * info.lanes * info.chains *
         static_cast<double>(iterations) * threads / seconds / 1e9;
}

// The best of three measurements: the first also pays for starting the threads and for the
// cores reaching their clock, which at ~0.3 s per measurement is several percent.
double measure_fma_peak_gflops(int threads) {
  double best = 0;
  for (int i = 0; i < 3; ++i) best = std::max(best, measure_fma_once(threads, kIterations));
  return best;
}

}  // namespace vvae::bench
