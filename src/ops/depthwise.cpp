#include "ops/depthwise.hpp"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "core/cpu.hpp"
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

// --- portable ------------------------------------------------------------------------------

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

// One output row, all channels, into dst (W, C).
VVAE_KERNEL void row_portable_body(const Problem& pb, const Rows& rows, float* dst) {
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
VVAE_MULTI_ISA(row_portable, (const Problem& pb, const Rows& rows, float* dst), (pb, rows, dst))

// out (W, C/2) = v[..., :C/2] * silu(v[..., C/2:]) for v (W, C).
VVAE_KERNEL void glu_silu_row_body(const float* v, int64_t W, int64_t C, float* out) {
  const int64_t half = C / 2;
  for (int64_t w = 0; w < W; ++w, v += C, out += half)
    for (int64_t c = 0; c < half; ++c) out[c] = v[c] * silu_fast(v[half + c]);
}
VVAE_MULTI_ISA(glu_silu_row, (const float* v, int64_t W, int64_t C, float* out), (v, W, C, out))

void run_portable_rows(const Problem& pb) {
  const bool glu = pb.out == DepthwiseOutput::kGluSilu;
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
      glu_silu_row(scratch.data(), pb.W, pb.C, out);
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

// The mask of the first `left` lanes (none when left <= 0, all when left >= 16).
inline __mmask16 lanes(int64_t left) {
  if (left <= 0) return 0;
  return left >= kLanes ? static_cast<__mmask16>(0xFFFF)
                        : static_cast<__mmask16>((1u << static_cast<unsigned>(left)) - 1u);
}

// A group of up to kGroup 16-channel blocks of the input, frame by frame: a rolling window of K
// frames, slot f % K holding frame f as H rows of W + 2R pixels of `width` floats (the group's
// channels), the R pixels at each end of a row zero (the W padding). Gathering a group into it
// reads every input pixel once per group, in runs of up to 256 contiguous bytes, and turns the
// channels-last stride (C floats between pixels, a page apart for wide layers) into short steps
// the kernel can stream.
constexpr int64_t kGroup = 4;

struct Window {
  int64_t K, R, H, Wp, width;
  std::vector<float> data;

  Window(int64_t k, int64_t h, int64_t w, int64_t channels)
      : K(k),
        R(k / 2),
        H(h),
        Wp(w + 2 * (k / 2)),
        width(channels),
        data(static_cast<size_t>(k * h * Wp * channels)) {}
  void clear() { std::fill(data.begin(), data.end(), 0.0f); }
  float* slot(int64_t frame) { return data.data() + (frame % K) * H * Wp * width; }

  // Channels [c0, c0 + valid) of input frame `frame`; lanes past `valid` are zeros.
  void gather(const Problem& pb, int64_t n, int64_t frame, int64_t c0, int64_t valid) {
    float* dst = slot(frame);
    const float* src = pb.x + (n * pb.T + frame) * pb.H * pb.W * pb.C + c0;
    for (int64_t h = 0; h < pb.H; ++h)
      for (int64_t w = 0; w < pb.W; ++w) {
        const float* in = src + (h * pb.W + w) * pb.C;
        float* out = dst + (h * Wp + w + R) * width;
        for (int64_t b = 0; b < width; b += kLanes)
          _mm512_storeu_ps(out + b, _mm512_maskz_loadu_ps(lanes(valid - b), in + b));
      }
  }
};

// The K^3 taps of channels [c0, c0 + valid), block by block: block b's taps are K^3 x 16
// contiguous floats at b * K^3 * 16 (zeros in lanes past `valid`).
void gather_taps(const Problem& pb, int64_t c0, int64_t valid, int64_t blocks,
                 std::vector<float>& taps) {
  const int64_t n = pb.K * pb.K * pb.K;
  taps.resize(static_cast<size_t>(blocks * n * kLanes));
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t k = 0; k < n; ++k)
      _mm512_storeu_ps(
          taps.data() + (b * n + k) * kLanes,
          _mm512_maskz_loadu_ps(lanes(valid - b * kLanes), pb.taps + k * pb.C + c0 + b * kLanes));
}

// The window rows and tap rows of one output row (t, h): frames and rows outside the clip are
// left out (zero padding in T and H); offsets are relative to the window and tap bases.
struct RowTaps {
  int64_t src[kMaxKernel * kMaxKernel];
  int64_t taps[kMaxKernel * kMaxKernel];
  int count = 0;
};

RowTaps row_taps(const Problem& pb, const Window& win, int64_t t, int64_t h) {
  RowTaps r;
  const int64_t R = pb.K / 2;
  for (int64_t a = 0; a < pb.K; ++a) {
    const int64_t f = t + a - R;
    if (f < 0 || f >= pb.T) continue;
    for (int64_t p = 0; p < pb.K; ++p) {
      const int64_t hh = h + p - R;
      if (hh < 0 || hh >= pb.H) continue;
      r.src[r.count] = ((f % pb.K) * win.H + hh) * win.Wp * win.width;
      r.taps[r.count] = (a * pb.K + p) * pb.K * kLanes;
      ++r.count;
    }
  }
  return r;
}

// WB adjacent output pixels from w0 of one 16-channel block: per input row the WB + K - 1 window
// vectors are loaded once and each tap vector is shared by WB FMAs. Window pixels and output
// pixels are `stride` floats apart.
template <int K, int WB>
inline void pixels(const RowTaps& rt, const float* window, const float* taps, __m512 bias,
                   int64_t stride, int64_t w0, float* out) {
  __m512 acc[WB];
#pragma GCC unroll 16
  for (int j = 0; j < WB; ++j) acc[j] = bias;
  for (int i = 0; i < rt.count; ++i) {
    const float* s = window + rt.src[i] + w0 * stride;
    const float* tap = taps + rt.taps[i];
    __m512 in[WB + K - 1];
#pragma GCC unroll 16
    for (int j = 0; j < WB + K - 1; ++j) in[j] = _mm512_loadu_ps(s + j * stride);
#pragma GCC unroll 8
    for (int q = 0; q < K; ++q) {
      const __m512 wv = _mm512_loadu_ps(tap + q * kLanes);
#pragma GCC unroll 16
      for (int j = 0; j < WB; ++j) acc[j] = _mm512_fmadd_ps(in[j + q], wv, acc[j]);
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < WB; ++j) _mm512_storeu_ps(out + (w0 + j) * stride, acc[j]);
}

// One output row of every block of the window's group into out (W pixels of `width` floats).
template <int K>
void row(const RowTaps& rt, const Window& win, const std::vector<float>& taps, const __m512* bias,
         int64_t W, float* out) {
  const int64_t stride = win.width, taps_per_block = K * K * K * kLanes;
  for (int64_t b = 0; b < stride / kLanes; ++b) {
    const float* window = win.data.data() + b * kLanes;
    const float* tap = taps.data() + b * taps_per_block;
    float* dst = out + b * kLanes;
    int64_t w = 0;
    for (; w + 8 <= W; w += 8) pixels<K, 8>(rt, window, tap, bias[b], stride, w, dst);
    for (; w + 4 <= W; w += 4) pixels<K, 4>(rt, window, tap, bias[b], stride, w, dst);
    for (; w < W; ++w) pixels<K, 1>(rt, window, tap, bias[b], stride, w, dst);
  }
}

// Work items are (sample, group of kGroup 16-channel blocks), each swept through all frames with
// its own window. For the GLU output an item takes a group of the value half and the matching
// group of the gate half.
template <int K>
void run_items(const Problem& pb) {
  const bool glu = pb.out == DepthwiseOutput::kGluSilu;
  const int64_t T = pb.T, H = pb.H, W = pb.W, C = pb.C, half = C / 2, R = K / 2;
  const int64_t channels = glu ? half : C;
  const int64_t blocks = std::min(kGroup, (channels + kLanes - 1) / kLanes);
  const int64_t width = blocks * kLanes, groups = (channels + width - 1) / width;
  parallel_for(pb.N * groups, 1, [&](int64_t i0, int64_t i1) {
    Window value(K, H, W, width), gate(K, glu ? H : 0, W, width);
    std::vector<float> value_taps, gate_taps;
    std::vector<float> rows(static_cast<size_t>(2 * W * width));
    float* value_row = rows.data();
    float* gate_row = value_row + W * width;
    __m512 value_bias[kGroup], gate_bias[kGroup];
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t n = item / groups, c0 = item % groups * width;
      const int64_t valid = std::min(width, channels - c0);
      for (int64_t b = 0; b < blocks; ++b) {
        const __mmask16 m = lanes(valid - b * kLanes);
        value_bias[b] = _mm512_maskz_loadu_ps(m, pb.bias + c0 + b * kLanes);
        if (glu) gate_bias[b] = _mm512_maskz_loadu_ps(m, pb.bias + half + c0 + b * kLanes);
      }
      gather_taps(pb, c0, valid, blocks, value_taps);
      if (glu) gather_taps(pb, half + c0, valid, blocks, gate_taps);
      value.clear();
      if (glu) gate.clear();
      for (int64_t f = 0; f < std::min(R, T); ++f) {
        value.gather(pb, n, f, c0, valid);
        if (glu) gate.gather(pb, n, f, half + c0, valid);
      }
      for (int64_t t = 0; t < T; ++t) {
        if (t + R < T) {
          value.gather(pb, n, t + R, c0, valid);
          if (glu) gate.gather(pb, n, t + R, half + c0, valid);
        }
        for (int64_t h = 0; h < H; ++h) {
          const RowTaps rt = row_taps(pb, value, t, h);
          float* out = pb.y + ((n * T + t) * H + h) * W * pb.out_channels + c0;
          row<K>(rt, value, value_taps, value_bias, W, value_row);
          if (!glu) {
            for (int64_t w = 0; w < W; ++w)
              for (int64_t b = 0; b < width; b += kLanes)
                _mm512_mask_storeu_ps(out + w * C + b, lanes(valid - b),
                                      _mm512_loadu_ps(value_row + w * width + b));
            continue;
          }
          row<K>(rt, gate, gate_taps, gate_bias, W, gate_row);
          for (int64_t w = 0; w < W; ++w)
            for (int64_t b = 0; b < width; b += kLanes) {
              const __m512 v = _mm512_loadu_ps(value_row + w * width + b);
              const __m512 g = _mm512_loadu_ps(gate_row + w * width + b);
              _mm512_mask_storeu_ps(out + w * half + b, lanes(valid - b),
                                    _mm512_mul_ps(v, silu_ps(g)));
            }
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
  return cpu_isa() == Isa::kAvx512;
}

}  // namespace

std::string depthwise_kernel_name() {
  return cpu_has_avx512() ? "vvae AVX-512 register-blocked kernel"
                          : "vvae portable loops at " + std::string(isa_name(cpu_isa())) +
                                " (the register-blocked kernel needs AVX-512)";
}

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
