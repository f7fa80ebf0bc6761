// The Winograd F(4x4, 3x3) transforms, compiled once per instruction set: included by
// winograd_{sse41,avx2,avx512}.cpp, each built with its ISA's flags and defining
// VVAE_WINOGRAD_ISA (the function-table name). See winograd_kernels.hpp.
#include "ops/simd/vec.hpp"
#include "ops/winograd_kernels.hpp"

namespace vvae::winograd {
namespace {

using simd::Scalar;
using simd::Vec;

// B^T applied to six values (one column or row of a patch).
template <typename V>
inline void bt6(const V d[6], V t[6]) {
  const V four = V::set1(4.0f), five = V::set1(5.0f), two = V::set1(2.0f);
  // t0 = 4 d0 - 5 d2 + d4, t5 = 4 d1 - 5 d3 + d5
  t[0] = fnmadd(five, d[2], fmadd(four, d[0], d[4]));
  t[5] = fnmadd(five, d[3], fmadd(four, d[1], d[5]));
  // t1, t2 = (d3 + d4) -/+ 4 (d1 + d2) with d2's sign: t1 = -4 d1 - 4 d2 + d3 + d4,
  // t2 = 4 d1 - 4 d2 - d3 + d4
  const V s34 = d[4] - d[2] * four;  // d4 - 4 d2
  t[1] = fnmadd(four, d[1], s34 + d[3]);
  t[2] = fmadd(four, d[1], s34 - d[3]);
  // t3 = -2 d1 - d2 + 2 d3 + d4, t4 = 2 d1 - d2 - 2 d3 + d4
  const V s = d[4] - d[2], m13 = d[3] - d[1];
  t[3] = fmadd(two, m13, s);
  t[4] = fnmadd(two, m13, s);
}

// A^T applied to six values.
template <typename V>
inline void at6(const V m[6], V o[4]) {
  const V two = V::set1(2.0f), four = V::set1(4.0f), eight = V::set1(8.0f);
  const V p12 = m[1] + m[2], m12 = m[1] - m[2], p34 = m[3] + m[4], m34 = m[3] - m[4];
  o[0] = m[0] + p12 + p34;
  o[1] = fmadd(two, m34, m12);
  o[2] = fmadd(four, p34, p12);
  o[3] = fmadd(eight, m34, m12) + m[5];
}

template <typename V>
inline void input_lanes(const float* const* src, int64_t c, float* v, int64_t p_stride) {
  V t[6][6];  // t[i][j] = (B^T d)[i][j]
  for (int j = 0; j < 6; ++j) {
    V col[6];
    for (int i = 0; i < 6; ++i) col[i] = V::load(src[6 * i + j] + c);
    V out[6];
    bt6(col, out);
    for (int i = 0; i < 6; ++i) t[i][j] = out[i];
  }
  for (int i = 0; i < 6; ++i) {
    V out[6];
    bt6(t[i], out);
    for (int j = 0; j < 6; ++j) out[j].store(v + (6 * i + j) * p_stride + c);
  }
}

void input_tile(const float* const* src, int64_t channels, float* v, int64_t p_stride) {
  int64_t c = 0;
  for (; c + Vec::kLanes <= channels; c += Vec::kLanes) input_lanes<Vec>(src, c, v, p_stride);
  for (; c < channels; ++c) input_lanes<Scalar>(src, c, v, p_stride);
}

template <typename V>
inline void output_lanes(const float* m, int64_t p_stride, int64_t c, const float* bias,
                         float* const* dst, bool accumulate) {
  V t[4][6];  // t[r][j] = (A^T M)[r][j]
  for (int j = 0; j < 6; ++j) {
    V col[6];
    for (int i = 0; i < 6; ++i) col[i] = V::load(m + (6 * i + j) * p_stride + c);
    V out[4];
    at6(col, out);
    for (int r = 0; r < 4; ++r) t[r][j] = out[r];
  }
  const V b = bias != nullptr ? V::load(bias + c) : V::zero();
  for (int r = 0; r < 4; ++r) {
    V out[4];
    at6(t[r], out);
    for (int s = 0; s < 4; ++s) {
      float* d = dst[4 * r + s];
      if (d == nullptr) continue;
      V y = out[s] + b;
      if (accumulate) y = y + V::load(d + c);
      y.store(d + c);
    }
  }
}

void output_tile(const float* m, int64_t p_stride, int64_t channels, const float* bias,
                 float* const* dst, bool accumulate) {
  int64_t c = 0;
  for (; c + Vec::kLanes <= channels; c += Vec::kLanes)
    output_lanes<Vec>(m, p_stride, c, bias, dst, accumulate);
  for (; c < channels; ++c) output_lanes<Scalar>(m, p_stride, c, bias, dst, accumulate);
}

// G applied to three values: six.
template <typename V>
inline void g3(const V g[3], V o[6]) {
  const V q = V::set1(0.25f), s = V::set1(1.0f / 6.0f), t = V::set1(1.0f / 24.0f),
          u = V::set1(1.0f / 12.0f);
  const V sum = g[0] + g[2];
  o[0] = q * g[0];
  o[1] = (sum + g[1]) * V::set1(-1.0f / 6.0f);
  o[2] = (g[1] - sum) * s;
  const V even = fmadd(t, g[0], s * g[2]);  // g0 / 24 + g2 / 6
  o[3] = fmadd(u, g[1], even);
  o[4] = fnmadd(u, g[1], even);
  o[5] = g[2];
}

template <typename V>
inline void weight_lanes(const float* taps, int64_t tap_stride, int64_t j, float* u,
                         int64_t p_stride) {
  V t[6][3];  // t[i][x] = (G g)[i][x]
  for (int x = 0; x < 3; ++x) {
    const V col[3] = {V::load(taps + x * tap_stride + j), V::load(taps + (3 + x) * tap_stride + j),
                      V::load(taps + (6 + x) * tap_stride + j)};
    V out[6];
    g3(col, out);
    for (int i = 0; i < 6; ++i) t[i][x] = out[i];
  }
  for (int i = 0; i < 6; ++i) {
    V out[6];
    g3(t[i], out);
    for (int k = 0; k < 6; ++k) out[k].store(u + (6 * i + k) * p_stride + j);
  }
}

void weight_block(const float* taps, int64_t tap_stride, int64_t lanes, float* u,
                  int64_t p_stride) {
  int64_t j = 0;
  for (; j + Vec::kLanes <= lanes; j += Vec::kLanes)
    weight_lanes<Vec>(taps, tap_stride, j, u, p_stride);
  for (; j < lanes; ++j) weight_lanes<Scalar>(taps, tap_stride, j, u, p_stride);
}

}  // namespace

extern const Kernels VVAE_WINOGRAD_ISA;
const Kernels VVAE_WINOGRAD_ISA = {input_tile, output_tile, weight_block};

}  // namespace vvae::winograd
