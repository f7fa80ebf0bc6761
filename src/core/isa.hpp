#pragma once
// The instruction-set levels vvae's kernels are built for (core/cpu.hpp picks one at run time).
// A header of its own, free of library includes, for the translation units compiled with wider
// ISA flags (ops/simd/vec.hpp explains why they include as little as they can).

namespace vvae {

enum class Isa {
  kSse41,   // SSE4.1: the portable kernels (vvae is built for generic x86-64)
  kAvx2,    // AVX2 + FMA (+ F16C)
  kAvx512,  // AVX-512 F, BW, VL and DQ (the "core" set)
};

}  // namespace vvae
