#include "ops/depthwise.hpp"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "core/dry_run.hpp"
#include "core/threads.hpp"
#include "ops/elementwise.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

constexpr int64_t kMaxKernel = 5;

// One call: x (N, T, H, W, C), taps (K, K, K, C), bias (C) -> y (N, T, H, W, out_channels).
struct Problem {
  const float* x;
  const float* taps;
  const float* bias;
  float* y;
  int64_t N, T, H, W, C, K;
  DepthwiseOutput out;
  int64_t out_channels;
};

// The input rows (t + a - r, h + p - r) inside the clip for output row (n, t, h), each with its
// taps (a, p, q = 0..K-1): zero padding in T and H is the rows left out.
struct Rows {
  const float* src[kMaxKernel * kMaxKernel];   // pixel 0, channel 0 of the input row
  const float* taps[kMaxKernel * kMaxKernel];  // tap (a, p, 0), channel 0
  int count = 0;
};

Rows valid_rows(const Problem& pb, int64_t n, int64_t t, int64_t h) {
  Rows rows;
  const int64_t r = pb.K / 2;
  for (int64_t a = 0; a < pb.K; ++a) {
    const int64_t tt = t + a - r;
    if (tt < 0 || tt >= pb.T) continue;
    for (int64_t p = 0; p < pb.K; ++p) {
      const int64_t hh = h + p - r;
      if (hh < 0 || hh >= pb.H) continue;
      rows.src[rows.count] = pb.x + ((n * pb.T + tt) * pb.H + hh) * pb.W * pb.C;
      rows.taps[rows.count] = pb.taps + (a * pb.K + p) * pb.K * pb.C;
      ++rows.count;
    }
  }
  return rows;
}

// --- portable ------------------------------------------------------------------------------

// One output row, all channels, into dst (W, C).
void row_portable(const Problem& pb, const Rows& rows, float* dst) {
  const int64_t W = pb.W, C = pb.C, r = pb.K / 2;
  for (int64_t w = 0; w < W; ++w) std::copy_n(pb.bias, C, dst + w * C);
  for (int i = 0; i < rows.count; ++i)
    for (int64_t q = 0; q < pb.K; ++q) {
      const float* tap = rows.taps[i] + q * C;
      // Output pixels whose input pixel w + q - r is inside the row.
      const int64_t w0 = std::max<int64_t>(0, r - q), w1 = std::min<int64_t>(W, W + r - q);
      for (int64_t w = w0; w < w1; ++w) {
        const float* s = rows.src[i] + (w + q - r) * C;
        float* o = dst + w * C;
        for (int64_t c = 0; c < C; ++c) o[c] += s[c] * tap[c];
      }
    }
}

void run_portable_rows(const Problem& pb) {
  const bool glu = pb.out == DepthwiseOutput::kGluSilu;
  const int64_t half = pb.C / 2;
  parallel_for(pb.N * pb.T * pb.H, 1, [&](int64_t r0, int64_t r1) {
    std::vector<float> scratch(glu ? static_cast<size_t>(pb.W * pb.C) : 0);
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t n = row / (pb.T * pb.H), t = (row / pb.H) % pb.T, h = row % pb.H;
      float* out = pb.y + row * pb.W * pb.out_channels;
      if (!glu) {
        row_portable(pb, valid_rows(pb, n, t, h), out);
        continue;
      }
      row_portable(pb, valid_rows(pb, n, t, h), scratch.data());
      for (int64_t w = 0; w < pb.W; ++w) {
        const float* v = scratch.data() + w * pb.C;
        for (int64_t c = 0; c < half; ++c) out[w * half + c] = v[c] * silu(v[half + c]);
      }
    }
  });
}

// --- AVX-512 -------------------------------------------------------------------------------

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")

namespace avx512 {

constexpr int64_t kLanes = 16;

// exp(x), Cephes' single-precision polynomial (about 1 ulp), 2^n applied with scalef. The
// zero-masking forms with a full mask avoid GCC 12's false "uninitialised" warnings about the
// unmasked intrinsics.
inline __m512 exp_ps(__m512 x) {
  constexpr __mmask16 all = 0xFFFF;
  x = _mm512_maskz_max_ps(all, x, _mm512_set1_ps(-87.33654f));
  x = _mm512_maskz_min_ps(all, x, _mm512_set1_ps(88.72283f));
  const __m512 n =
      _mm512_maskz_roundscale_ps(all, _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_scalef_ps(all, p, n);
}

inline __m512 silu_ps(__m512 x) {
  const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

inline __mmask16 lanes(int64_t left) {
  return left >= kLanes ? static_cast<__mmask16>(0xFFFF)
                        : static_cast<__mmask16>((1u << static_cast<unsigned>(left)) - 1u);
}

// WB adjacent output pixels from w0 whose K taps along W all fall inside the row: per input
// row, the WB + K - 1 input vectors are loaded once and each tap vector is shared by WB FMAs.
template <int K, int WB>
inline void pixel_block(const Rows& rows, int64_t C, int64_t c0, __mmask16 m, __m512 bias,
                        int64_t w0, float* dst, int64_t stride) {
  constexpr int R = K / 2;
  __m512 acc[WB];
#pragma GCC unroll 16
  for (int j = 0; j < WB; ++j) acc[j] = bias;
  for (int i = 0; i < rows.count; ++i) {
    const float* s = rows.src[i] + (w0 - R) * C + c0;
    const float* tap = rows.taps[i] + c0;
    __m512 in[WB + K - 1];
#pragma GCC unroll 16
    for (int j = 0; j < WB + K - 1; ++j) in[j] = _mm512_maskz_loadu_ps(m, s + j * C);
#pragma GCC unroll 8
    for (int q = 0; q < K; ++q) {
      const __m512 wv = _mm512_maskz_loadu_ps(m, tap + q * C);
#pragma GCC unroll 16
      for (int j = 0; j < WB; ++j) acc[j] = _mm512_fmadd_ps(in[j + q], wv, acc[j]);
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < WB; ++j) _mm512_mask_storeu_ps(dst + (w0 + j) * stride, m, acc[j]);
}

// One output pixel near the row's ends: only the taps that fall inside the row.
template <int K>
inline void pixel_edge(const Rows& rows, int64_t W, int64_t C, int64_t c0, __mmask16 m, __m512 bias,
                       int64_t w, float* dst, int64_t stride) {
  constexpr int64_t R = K / 2;
  const int64_t q0 = std::max<int64_t>(0, R - w), q1 = std::min<int64_t>(K, W + R - w);
  __m512 acc = bias;
  for (int i = 0; i < rows.count; ++i) {
    const float* s = rows.src[i] + (w - R) * C + c0;
    const float* tap = rows.taps[i] + c0;
    for (int64_t q = q0; q < q1; ++q)
      acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, s + q * C),
                            _mm512_maskz_loadu_ps(m, tap + q * C), acc);
  }
  _mm512_mask_storeu_ps(dst + w * stride, m, acc);
}

// Channels [c0, c0 + 16) of one output row; pixel w goes to dst + w * stride.
template <int K>
void row_block(const Problem& pb, const Rows& rows, int64_t c0, float* dst, int64_t stride) {
  constexpr int64_t R = K / 2;
  const int64_t W = pb.W, C = pb.C;
  const __mmask16 m = lanes(C - c0);
  const __m512 bias = _mm512_maskz_loadu_ps(m, pb.bias + c0);
  int64_t w = 0;
  for (; w < std::min(R, W); ++w) pixel_edge<K>(rows, W, C, c0, m, bias, w, dst, stride);
  for (; w + 8 <= W - R; w += 8) pixel_block<K, 8>(rows, C, c0, m, bias, w, dst, stride);
  for (; w + 4 <= W - R; w += 4) pixel_block<K, 4>(rows, C, c0, m, bias, w, dst, stride);
  for (; w < W; ++w) pixel_edge<K>(rows, W, C, c0, m, bias, w, dst, stride);
}

// Work is split into (sample, 16-channel block, frame) items, channel block outermost: an item
// reads a K-frame slab of one channel block (K * H * W * 64 bytes, L2-sized at the model's tile
// sizes) and the next item of the same block reuses K - 1 of those frames. For the GLU output an
// item computes a block of the value half and the matching block of the gate half.
template <int K>
void run_items(const Problem& pb) {
  const bool glu = pb.out == DepthwiseOutput::kGluSilu;
  const int64_t W = pb.W, C = pb.C, half = C / 2;
  const int64_t blocks = ((glu ? half : C) + kLanes - 1) / kLanes;
  const int64_t items = pb.N * blocks * pb.T;
  parallel_for(items, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> scratch(glu ? static_cast<size_t>(2 * W * kLanes) : 0);
    float* value = scratch.data();
    float* gate = value + W * kLanes;
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t t = item % pb.T, c0 = (item / pb.T) % blocks * kLanes;
      const int64_t n = item / (pb.T * blocks);
      for (int64_t h = 0; h < pb.H; ++h) {
        const Rows rows = valid_rows(pb, n, t, h);
        float* out = pb.y + ((n * pb.T + t) * pb.H + h) * W * pb.out_channels;
        if (!glu) {
          row_block<K>(pb, rows, c0, out + c0, C);
          continue;
        }
        row_block<K>(pb, rows, c0, value, kLanes);
        row_block<K>(pb, rows, half + c0, gate, kLanes);
        const __mmask16 m = lanes(half - c0);
        for (int64_t w = 0; w < W; ++w) {
          const __m512 v = _mm512_loadu_ps(value + w * kLanes);
          const __m512 g = _mm512_loadu_ps(gate + w * kLanes);
          _mm512_mask_storeu_ps(out + w * half + c0, m, _mm512_mul_ps(v, silu_ps(g)));
        }
      }
    }
  });
}

void run(const Problem& pb) {
  if (pb.K == 3)
    run_items<3>(pb);
  else
    run_items<5>(pb);
}

}  // namespace avx512

#pragma GCC pop_options

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

}  // namespace

DepthwiseConv3d::DepthwiseConv3d(const Tensor& weight, const Tensor& bias) {
  if (weight.rank() != 5 || weight.dim(1) != 1 || weight.dim(2) != weight.dim(3) ||
      weight.dim(2) != weight.dim(4))
    fail("depthwise convolution weight must be (C, 1, k, k, k), got ", to_string(weight.shape()));
  channels_ = weight.dim(0);
  kernel_ = weight.dim(2);
  if (kernel_ != 3 && kernel_ != 5)
    fail("depthwise convolution supports kernels 3 and 5, got ", kernel_);
  if (bias.numel() > 0 && bias.numel() != channels_)
    fail("depthwise convolution bias ", to_string(bias.shape()), " does not match ", channels_,
         " channels");
  // Without weights (a shape-only model) there is nothing to repack; running fails.
  if (!weight.defined() || (bias.numel() > 0 && !bias.defined())) return;
  const int64_t taps = kernel_ * kernel_ * kernel_;
  taps_ = Tensor::empty({kernel_, kernel_, kernel_, channels_});
  bias_ = Tensor::zeros({channels_});
  for (int64_t c = 0; c < channels_; ++c)
    for (int64_t k = 0; k < taps; ++k)
      taps_.data()[k * channels_ + c] = weight.data()[c * taps + k];
  if (bias.numel() > 0) std::copy_n(bias.data(), channels_, bias_.data());
}

Shape DepthwiseConv3d::output_shape(const Shape& x, DepthwiseOutput out) const {
  if (x.size() != 5 || x[4] != channels_)
    fail("depthwise convolution of ", channels_, " channels needs (N, T, H, W, ", channels_,
         "), got ", to_string(x));
  Shape y = x;
  if (out == DepthwiseOutput::kGluSilu) {
    if (channels_ % 2 != 0) fail("GLU gating needs an even channel count, got ", channels_);
    y[4] = channels_ / 2;
  }
  return y;
}

Tensor DepthwiseConv3d::operator()(const Tensor& x, DepthwiseOutput out) const {
  return run(x, out, cpu_has_avx512());
}

Tensor DepthwiseConv3d::run_portable(const Tensor& x, DepthwiseOutput out) const {
  return run(x, out, false);
}

Tensor DepthwiseConv3d::run(const Tensor& x, DepthwiseOutput out, bool simd) const {
  Tensor y = Tensor::empty(output_shape(x.shape(), out));
  if (dry_run_active() || y.numel() == 0) return y;
  if (taps_.data() == nullptr) fail("the model was built without weights");
  const Problem pb{x.data(), taps_.data(), bias_.data(), y.data(), x.dim(0), x.dim(1),
                   x.dim(2), x.dim(3),     x.dim(4),     kernel_,  out,      y.dim(4)};
  if (simd)
    avx512::run(pb);
  else
    run_portable_rows(pb);
  return y;
}

}  // namespace vvae
