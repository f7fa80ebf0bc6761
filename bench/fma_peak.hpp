#pragma once
// Measures the machine's fp32 fused multiply-add peak with a register-only loop on every
// thread, at the instruction-set level vvae's kernels use (`cpu_isa()`, so VVAE_MAX_ISA caps it
// too): the ceiling "percent of peak" figures are quoted against.
//
// Every one of the loop's independent accumulator chains reaches the returned value, so the
// compiler cannot drop any of them while the count assumes them all (issue 19: the AVX2 loop
// returned one chain of twelve and over-reported by 1.5x). `fma_probe_check.cpp` cross-checks
// this against a second probe written in assembly and against the clock.

namespace vvae::bench {

// The loop's parameters for the ISA in use, and what the count assumes.
struct FmaProbeInfo {
  const char* isa;    // "avx512", "avx2" or "sse41"
  int lanes;          // fp32 lanes per vector
  int chains;         // independent accumulator chains
  int flop_per_step;  // FLOP per lane per chain per iteration (2: one multiply, one add)
};
FmaProbeInfo fma_probe_info();

// GFLOP/s (2 per FMA lane) with `threads` OpenMP threads: the best of three measurements.
double measure_fma_peak_gflops(int threads);
// One measurement, with `iterations` loop trips on each thread.
double measure_fma_once(int threads, long iterations);

}  // namespace vvae::bench
