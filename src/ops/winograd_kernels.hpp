#pragma once
// The per-instruction-set pieces of the Winograd F(4x4, 3x3) convolution (ops/winograd.hpp):
// the three transforms, written once (winograd_kernels.inl) and compiled for SSE4.1, AVX2 and
// AVX-512. They work on channel vectors: a "patch" is 36 pointers to `channels` floats each.
//
//   input   V = B^T d B   6x6 input patch d            -> 36 transformed points
//   output  Y = A^T M A   36 points of the GEMM output -> 4x4 output pixels (+ bias, + dst)
//   weight  U = G g G^T   3x3 filter taps g            -> 36 points
// with Lavin and Gray's matrices for the interpolation points 0, 1, -1, 2, -2 and infinity.

#include <cstdint>

#include "core/isa.hpp"

namespace vvae::winograd {

constexpr int64_t kTile = 4;     // output pixels per tile side
constexpr int64_t kAlpha = 6;    // input pixels per tile side (kTile + 3 - 1)
constexpr int64_t kPoints = 36;  // kAlpha * kAlpha transformed points

struct Kernels {
  // v[p * p_stride + c] = (B^T d B)[p] for channels c in [0, channels), where the patch pixel
  // (i, j) is src[6 i + j] (a pointer to `channels` floats, possibly a zero row).
  void (*input_tile)(const float* const* src, int64_t channels, float* v, int64_t p_stride);
  // dst[4 r + s][c] = (A^T M A)[r][s] + bias[c] (+ dst[...][c] when accumulating), for the
  // output pixels whose pointer is not null; M[p] = m + p * p_stride.
  void (*output_tile)(const float* m, int64_t p_stride, int64_t channels, const float* bias,
                      float* const* dst, bool accumulate);
  // u[p * p_stride + j] = (G g_j G^T)[p] for j in [0, lanes), where g_j's tap (y, x) is
  // taps[(3 y + x) * tap_stride + j]: filters side by side, one row per tap.
  void (*weight_block)(const float* taps, int64_t tap_stride, int64_t lanes, float* u,
                       int64_t p_stride);
};

const Kernels& kernels(Isa isa);

}  // namespace vvae::winograd
