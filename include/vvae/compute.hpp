#pragma once
// How vvae computes: the thread count, and the precision and algorithm of convolutions that a
// model runs in (LoadOptions::compute). Every mode's measured error is in BENCHMARKS.md.

#include <string>
#include <vector>

namespace vvae {

enum class Precision { kFp32, kBf16 };  // --precision fp32|bf16
// --conv-algo auto|winograd|direct:
//   winograd  vvae's Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions (2-D and 3-D, and the
//             fused upsample-convolutions), oneDNN direct for the rest; fp32 only; any x86-64
//   direct    oneDNN's direct convolutions everywhere (the reference path)
//   auto      winograd in fp32, direct in bf16 (the default)
enum class ConvAlgorithm { kAuto, kWinograd, kDirect };

struct ComputeOptions {
  Precision precision = Precision::kFp32;
  ConvAlgorithm conv_algorithm = ConvAlgorithm::kAuto;
};

// Threads used by every kernel (OpenMP, shared with oneDNN). 0 means all cores.
void set_num_threads(int threads);
int num_threads();

// "auto", "winograd", "direct".
const char* conv_algorithm_name(ConvAlgorithm algorithm);

// The CPU, its features, the instruction-set level vvae and oneDNN use (the CPU's best, or
// VVAE_MAX_ISA=avx512|avx2|sse41 when set) and the kernels each kind of operation runs in
// `compute`, one line each (`vvae info` prints them).
std::vector<std::string> kernel_report(const ComputeOptions& compute = {});

}  // namespace vvae
