#pragma once
// Measures the machine's fp32 fused multiply-add peak with a register-only AVX-512 (or AVX2)
// loop on every thread: the ceiling "percent of peak" figures are quoted against.

namespace vvae::bench {

// GFLOP/s (2 per FMA lane) with `threads` OpenMP threads.
double measure_fma_peak_gflops(int threads);

}  // namespace vvae::bench
