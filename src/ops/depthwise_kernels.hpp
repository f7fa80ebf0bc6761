#pragma once
// The register-blocked depthwise 3-D convolution (ops/depthwise.hpp), written once
// (depthwise_kernels.inl) and compiled for SSE4.1, AVX2 and AVX-512.
//
// Work items are (sample, group of channel blocks): an item gathers its group's channels frame by
// frame into a rolling window of K zero-padded frames and sweeps every output row, each tap
// vector shared by a row of adjacent output pixels held in registers. depthwise.cpp splits the
// items over threads and gives each thread its scratch.

#include <cstdint>

#include "core/isa.hpp"

namespace vvae::depthwise {

constexpr int64_t kMaxKernel = 5;

struct Problem {
  const float* x;     // (N, T, H, W, C)
  const float* taps;  // (K, K, K, C)
  const float* bias;  // (C)
  float* y;           // (N, T, H, W, out_channels)
  int64_t N, T, H, W, C, K;
  bool glu;              // y = v * silu(g) of the two channel halves
  int64_t out_channels;  // C, or C / 2 with glu
  // The item grid: `groups` groups of `width` channels (blocks of the ISA's vector width) of the
  // value half (glu) or of all channels; items = N * groups.
  int64_t width, groups;
};

struct Kernels {
  int64_t lanes;  // floats per vector
  // Floats of scratch one thread needs for items of this problem.
  int64_t (*scratch_floats)(const Problem& pb);
  // Items [i0, i1) with `scratch` (scratch_floats(pb) floats, any content).
  void (*run_items)(const Problem& pb, int64_t i0, int64_t i1, float* scratch);
};

const Kernels& kernels(Isa isa);

// out[i] = v[i] * silu(g[i]) for i in [0, n): GLUMBConv's gating (ops/elementwise.cpp).
void multiply_silu(const float* v, const float* g, int64_t n, float* out);

}  // namespace vvae::depthwise
