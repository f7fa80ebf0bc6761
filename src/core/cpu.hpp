#pragma once
// What the CPU can run, and the instruction-set level vvae's kernels and oneDNN use.
//
// The level is the best the CPU (and the OS, which must save the wide registers) supports,
// lowered by VVAE_MAX_ISA=avx512|avx2|sse41 when it is set: read once, at the first query, and
// passed to oneDNN (ONEDNN_MAX_CPU_ISA) before its first primitive, so that the lower paths can
// be tested on a better machine. A cap only lowers; naming a level above the CPU's is refused.

#include <string>
#include <vector>

#include "core/isa.hpp"

namespace vvae {

struct CpuFeatures {
  std::string model;  // the CPU's brand string
  bool sse41 = false, avx2 = false, fma = false, f16c = false;
  bool avx512 = false;       // F + BW + VL + DQ, with OS support for the ZMM state
  bool avx512_bf16 = false;  // AVX512-BF16 (vdpbf16ps)
};

// What the CPU supports, before any cap.
const CpuFeatures& detected_cpu_features();

// The level kernels use: the CPU's best, lowered by VVAE_MAX_ISA.
Isa cpu_isa();
// bf16 convolutions can run: AVX512-BF16 present and the level is AVX-512.
bool cpu_can_bf16();

const char* isa_name(Isa isa);  // "sse41", "avx2", "avx512"
// "VVAE_MAX_ISA=avx2 (the CPU has avx512)" when a cap lowers the level, else empty.
std::string isa_cap_note();
// One line per fact for `vvae info`: the CPU, its features, the level in use.
std::vector<std::string> cpu_report();

}  // namespace vvae
