#include "ops/depthwise.hpp"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/cpu.hpp"
#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "core/threads.hpp"
#include "ops/depthwise_kernels.hpp"
#include "ops/elementwise.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

using depthwise::kMaxKernel;
using depthwise::Problem;

// Channel blocks an item of the register-blocked kernel takes (groups of up to this many vectors).
constexpr int64_t kGroupBlocks = 4;

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
template <int kLanes>
VVAE_KERNEL void glu_silu_row_body(const float* v, int64_t W, int64_t C, float* out) {
  const int64_t half = C / 2;
  for (int64_t w = 0; w < W; ++w, v += C, out += half)
    multiply_silu_span<kLanes>(v, v + half, half, out);
}
VVAE_MULTI_ISA_LANES(glu_silu_row, (const float* v, int64_t W, int64_t C, float* out),
                     (v, W, C, out))

void run_portable_rows(const Problem& pb) {
  const bool glu = pb.glu;
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

void run_blocked(const Problem& pb, const depthwise::Kernels& k, Tensor& scratch) {
  const int64_t floats = scratch.dim(1);
  std::vector<float> private_scratch(omp_in_parallel() ? static_cast<size_t>(floats) : 0);
  parallel_for(pb.N * pb.groups, 1, [&](int64_t i0, int64_t i1) {
    float* mine = private_scratch.empty() ? scratch.data() + omp_get_thread_num() * floats
                                          : private_scratch.data();
    k.run_items(pb, i0, i1, mine);
  });
}

}  // namespace

std::string depthwise_kernel_name() {
  return std::string("vvae register-blocked kernel at ") + isa_name(cpu_isa());
}

namespace depthwise {
extern const Kernels kernels_sse41, kernels_avx2, kernels_avx512;

const Kernels& kernels(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return kernels_avx512;
    case Isa::kAvx2:
      return kernels_avx2;
    case Isa::kSse41:
      break;
  }
  return kernels_sse41;
}

void multiply_silu(const float* v, const float* g, int64_t n, float* out) {
  vvae::multiply_silu(v, g, n, out);
}
}  // namespace depthwise

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
  if (!weight.has_data() || (bias.numel() > 0 && !bias.has_data())) return;
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
  const Isa isa = cpu_isa();
  return run(x, out, &isa);
}

Tensor DepthwiseConv3d::run_at(const Tensor& x, Isa isa, DepthwiseOutput out) const {
  if (isa > cpu_isa())
    fail("internal: the ", isa_name(isa), " depthwise kernel on a ", isa_name(cpu_isa()), " CPU");
  return run(x, out, &isa);
}

Tensor DepthwiseConv3d::run_portable(const Tensor& x, DepthwiseOutput out) const {
  return run(x, out, nullptr);
}

Tensor DepthwiseConv3d::run(const Tensor& x, DepthwiseOutput out, const Isa* blocked) const {
  Tensor y = Tensor::empty(output_shape(x.shape(), out));
  const bool glu = out == DepthwiseOutput::kGluSilu;
  Problem pb{nullptr,  taps_.data(), bias_.data(), y.data(), x.dim(0), x.dim(1), x.dim(2),
             x.dim(3), x.dim(4),     kernel_,      glu,      y.dim(4), 0,        0};
  pb.x = x.data();
  Tensor scratch;
  if (blocked != nullptr) {
    const depthwise::Kernels& k = depthwise::kernels(*blocked);
    const int64_t channels = glu ? pb.C / 2 : pb.C;
    const int64_t blocks = std::min(kGroupBlocks, (channels + k.lanes - 1) / k.lanes);
    pb.width = blocks * k.lanes;
    pb.groups = (channels + pb.width - 1) / pb.width;
    const int64_t threads = std::min<int64_t>(omp_get_max_threads(), pb.N * pb.groups);
    scratch = Tensor::empty({std::max<int64_t>(threads, 1), k.scratch_floats(pb)});
  }
  if (dry_run_active() || y.numel() == 0) return y;
  if (taps_.data() == nullptr) fail("the model was built without weights");
  const ProfileTimer timer(glu ? "depthwise+glu" : "depthwise", x.shape());
  if (blocked != nullptr)
    run_blocked(pb, depthwise::kernels(*blocked), scratch);
  else
    run_portable_rows(pb);
  return y;
}

}  // namespace vvae
