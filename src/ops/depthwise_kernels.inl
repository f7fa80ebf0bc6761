// The register-blocked depthwise 3-D convolution, compiled once per instruction set: included by
// depthwise_{sse41,avx2,avx512}.cpp, each built with its ISA's flags and defining
// VVAE_DEPTHWISE_ISA (the function-table name). See depthwise_kernels.hpp.
#include "ops/depthwise_kernels.hpp"
#include "ops/simd/vec.hpp"

namespace vvae::depthwise {
namespace {

using simd::Vec;
constexpr int64_t kLanes = Vec::kLanes;

inline int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

// Output pixels per register block: accumulators plus the WB + K - 1 input vectors of a row must
// fit the register file (32 vectors with AVX-512, 16 below).
template <int K>
constexpr int kBlock = kLanes == 16 ? 8 : (K == 3 ? 6 : 4);

// A group's channels of K frames: slot f % K holds frame f as H rows of W + 2R pixels of `width`
// floats, the R pixels at each end of a row zero (the W padding), lanes past the valid channels
// zero. Gathering reads every input pixel once per group in contiguous runs and turns the
// channels-last stride (C floats between pixels) into short steps the kernel can stream.
struct Window {
  int64_t K, R, H, Wp, width;
  float* data;

  float* slot(int64_t frame) const { return data + (frame % K) * H * Wp * width; }
  int64_t floats() const { return K * H * Wp * width; }

  void clear() const {
    for (int64_t i = 0; i < floats(); ++i) data[i] = 0.0f;
  }

  // Channels [c0, c0 + valid) of input frame `frame`.
  void gather(const Problem& pb, int64_t n, int64_t frame, int64_t c0, int64_t valid) const {
    float* dst = slot(frame);
    const float* src = pb.x + (n * pb.T + frame) * pb.H * pb.W * pb.C + c0;
    const int64_t full = valid / kLanes * kLanes;
    for (int64_t h = 0; h < pb.H; ++h)
      for (int64_t w = 0; w < pb.W; ++w) {
        const float* in = src + (h * pb.W + w) * pb.C;
        float* out = dst + (h * Wp + w + R) * width;
        for (int64_t b = 0; b < full; b += kLanes) Vec::load(in + b).store(out + b);
        for (int64_t c = full; c < width; ++c) out[c] = c < valid ? in[c] : 0.0f;
      }
  }
};

// The K^3 taps of channels [c0, c0 + valid), block by block: block b's taps are K^3 x kLanes
// contiguous floats at b * K^3 * kLanes (zeros past `valid`).
void gather_taps(const Problem& pb, int64_t c0, int64_t valid, int64_t blocks, float* taps) {
  const int64_t n = pb.K * pb.K * pb.K;
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t k = 0; k < n; ++k)
      for (int64_t l = 0; l < kLanes; ++l) {
        const int64_t c = b * kLanes + l;
        taps[(b * n + k) * kLanes + l] = c < valid ? pb.taps[k * pb.C + c0 + c] : 0.0f;
      }
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

// WB adjacent output pixels from w0 of one channel block: per input row the WB + K - 1 window
// vectors are loaded once and each tap vector is shared by WB FMAs. Window pixels and output
// pixels are `stride` floats apart.
template <int K, int WB>
inline void pixels(const RowTaps& rt, const float* window, const float* taps, Vec bias,
                   int64_t stride, int64_t w0, float* out) {
  Vec acc[WB];
#pragma GCC unroll 16
  for (int j = 0; j < WB; ++j) acc[j] = bias;
  for (int i = 0; i < rt.count; ++i) {
    const float* s = window + rt.src[i] + w0 * stride;
    const float* tap = taps + rt.taps[i];
    Vec in[WB + K - 1];
#pragma GCC unroll 16
    for (int j = 0; j < WB + K - 1; ++j) in[j] = Vec::load(s + j * stride);
#pragma GCC unroll 8
    for (int q = 0; q < K; ++q) {
      const Vec wv = Vec::load(tap + q * kLanes);
#pragma GCC unroll 16
      for (int j = 0; j < WB; ++j) acc[j] = fmadd(in[j + q], wv, acc[j]);
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < WB; ++j) acc[j].store(out + (w0 + j) * stride);
}

// One output row of every block of the window's group into out (W pixels of `width` floats).
template <int K>
void row(const RowTaps& rt, const Window& win, const float* taps, const float* bias, int64_t W,
         float* out) {
  const int64_t stride = win.width, taps_per_block = K * K * K * kLanes;
  constexpr int WB = kBlock<K>;
  for (int64_t b = 0; b < stride / kLanes; ++b) {
    const float* window = win.data + b * kLanes;
    const float* tap = taps + b * taps_per_block;
    const Vec bv = Vec::load(bias + b * kLanes);
    float* dst = out + b * kLanes;
    int64_t w = 0;
    for (; w + WB <= W; w += WB) pixels<K, WB>(rt, window, tap, bv, stride, w, dst);
    for (; w + 2 <= W; w += 2) pixels<K, 2>(rt, window, tap, bv, stride, w, dst);
    for (; w < W; ++w) pixels<K, 1>(rt, window, tap, bv, stride, w, dst);
  }
}

// Scratch of one thread: the value and gate windows, their taps and biases, two output rows.
struct Scratch {
  Window value, gate;
  float *value_taps, *gate_taps, *value_bias, *gate_bias, *value_row, *gate_row;
};

Scratch carve(const Problem& pb, float* base) {
  const int64_t R = pb.K / 2, Wp = pb.W + 2 * R, taps = pb.K * pb.K * pb.K * pb.width;
  Scratch s{{pb.K, R, pb.H, Wp, pb.width, base},
            {pb.K, R, pb.glu ? pb.H : 0, Wp, pb.width, nullptr},
            nullptr,
            nullptr,
            nullptr,
            nullptr,
            nullptr,
            nullptr};
  float* p = base + s.value.floats();
  s.gate.data = p;
  p += s.gate.floats();
  s.value_taps = p, p += taps;
  s.gate_taps = p, p += taps;
  s.value_bias = p, p += pb.width;
  s.gate_bias = p, p += pb.width;
  s.value_row = p, p += pb.W * pb.width;
  s.gate_row = p;
  return s;
}

int64_t scratch_floats(const Problem& pb) {
  const int64_t R = pb.K / 2, Wp = pb.W + 2 * R, taps = pb.K * pb.K * pb.K * pb.width;
  const int64_t window = pb.K * pb.H * Wp * pb.width;
  return window * (pb.glu ? 2 : 1) + 2 * taps + 2 * pb.width + 2 * pb.W * pb.width;
}

void gather_bias(const float* bias, int64_t c0, int64_t valid, int64_t width, float* out) {
  for (int64_t c = 0; c < width; ++c) out[c] = c < valid ? bias[c0 + c] : 0.0f;
}

template <int K>
void run_items_k(const Problem& pb, int64_t i0, int64_t i1, float* scratch) {
  const int64_t T = pb.T, H = pb.H, W = pb.W, C = pb.C, half = C / 2, R = K / 2;
  const int64_t channels = pb.glu ? half : C, width = pb.width, blocks = width / kLanes;
  const Scratch s = carve(pb, scratch);
  for (int64_t item = i0; item < i1; ++item) {
    const int64_t n = item / pb.groups, c0 = item % pb.groups * width;
    const int64_t valid = min64(width, channels - c0);
    gather_bias(pb.bias, c0, valid, width, s.value_bias);
    gather_taps(pb, c0, valid, blocks, s.value_taps);
    s.value.clear();
    if (pb.glu) {
      gather_bias(pb.bias, half + c0, valid, width, s.gate_bias);
      gather_taps(pb, half + c0, valid, blocks, s.gate_taps);
      s.gate.clear();
    }
    for (int64_t f = 0; f < min64(R, T); ++f) {
      s.value.gather(pb, n, f, c0, valid);
      if (pb.glu) s.gate.gather(pb, n, f, half + c0, valid);
    }
    for (int64_t t = 0; t < T; ++t) {
      if (t + R < T) {
        s.value.gather(pb, n, t + R, c0, valid);
        if (pb.glu) s.gate.gather(pb, n, t + R, half + c0, valid);
      }
      for (int64_t h = 0; h < H; ++h) {
        const RowTaps rt = row_taps(pb, s.value, t, h);
        float* out = pb.y + ((n * T + t) * H + h) * W * pb.out_channels + c0;
        row<K>(rt, s.value, s.value_taps, s.value_bias, W, s.value_row);
        if (!pb.glu) {
          for (int64_t w = 0; w < W; ++w)
            for (int64_t c = 0; c < valid; ++c) out[w * C + c] = s.value_row[w * width + c];
          continue;
        }
        row<K>(rt, s.gate, s.gate_taps, s.gate_bias, W, s.gate_row);
        for (int64_t w = 0; w < W; ++w)
          multiply_silu(s.value_row + w * width, s.gate_row + w * width, valid, out + w * half);
      }
    }
  }
}

void run_items(const Problem& pb, int64_t i0, int64_t i1, float* scratch) {
  if (pb.K == 3)
    run_items_k<3>(pb, i0, i1, scratch);
  else
    run_items_k<5>(pb, i0, i1, scratch);
}

}  // namespace

extern const Kernels VVAE_DEPTHWISE_ISA;
const Kernels VVAE_DEPTHWISE_ISA = {kLanes, scratch_floats, run_items};

}  // namespace vvae::depthwise
