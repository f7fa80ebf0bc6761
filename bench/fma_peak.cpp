#include "fma_peak.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>

namespace vvae::bench {
namespace {

constexpr long kIterations = 100'000'000;

// 12 independent accumulator chains hide the FMA latency; returns a value so nothing is elided.
__attribute__((target("avx512f"))) float fma_loop_avx512() {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < kIterations; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, acc[i]);
  float out[16];
  _mm512_storeu_ps(out, sum);
  return out[0];
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2() {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < kIterations; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  float out[8];
  _mm256_storeu_ps(out, acc[0]);
  return out[0];
}

double measure_once(int threads) {
  const bool avx512 = __builtin_cpu_supports("avx512f");
  const double lanes = avx512 ? 16.0 : 8.0;
  volatile float sink = 0;
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
  {
    const float v = avx512 ? fma_loop_avx512() : fma_loop_avx2();
#pragma omp critical
    sink = sink + v;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return 2.0 * lanes * 12.0 * static_cast<double>(kIterations) * threads / seconds / 1e9;
}

}  // namespace

// The best of three measurements: the first also pays for starting the threads and for the
// cores reaching their clock, which at ~0.3 s per measurement is several percent.
double measure_fma_peak_gflops(int threads) {
  double best = 0;
  for (int i = 0; i < 3; ++i) best = std::max(best, measure_once(threads));
  return best;
}

}  // namespace vvae::bench
