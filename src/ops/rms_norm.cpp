#include "ops/rms_norm.hpp"

#include <cmath>

#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "core/threads.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

void check(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (x.rank() < 2) fail("rms_norm needs a tensor of rank >= 2, got ", to_string(x.shape()));
  const int64_t c = x.dim(-1);
  if (weight.numel() != c || bias.numel() != c)
    fail("rms_norm: weight ", to_string(weight.shape()), " and bias ", to_string(bias.shape()),
         " do not match ", c, " channels");
}

using Double4 = double __attribute__((vector_size(32)));

// One row: y = x / sqrt(mean(x^2) + eps) * weight + bias, then the activation. The squares are
// rounded to float32, as torch.square(x.float()), and summed in double (four partial sums).
template <int kLanes>
VVAE_KERNEL void normalise_row_body(const float* x, float* y, int64_t c, const float* weight,
                                    const float* bias, float eps, Activation act) {
  Double4 acc{};
  int64_t i = 0;
  for (; i + 4 <= c; i += 4) {
    Float4 v;
    __builtin_memcpy(&v, x + i, sizeof v);
    acc += __builtin_convertvector(v * v, Double4);
  }
  double sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  for (; i < c; ++i) {
    const float sq = x[i] * x[i];
    sum += sq;
  }
  const float mean = static_cast<float>(sum / static_cast<double>(c));
  const float denom = std::sqrt(mean + eps);
  for (int64_t j = 0; j < c; ++j) y[j] = x[j] / denom * weight[j] + bias[j];
  if (act == Activation::kSilu)
    silu_span<kLanes>(y, y, c);
  else if (act == Activation::kRelu)
    for (int64_t j = 0; j < c; ++j) y[j] = y[j] > 0.0f ? y[j] : 0.0f;
}
VVAE_MULTI_ISA_LANES(normalise_row,
                     (const float* x, float* y, int64_t c, const float* weight, const float* bias,
                      float eps, Activation act),
                     (x, y, c, weight, bias, eps, act))

// in and out may be the same row.
void normalise_rows(const float* in, float* out, int64_t rows, int64_t c, const float* weight,
                    const float* bias, float eps, Activation act) {
  parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      normalise_row(in + r * c, out + r * c, c, weight, bias, eps, act);
  });
}

}  // namespace

void rms_norm_inplace(Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                      Activation act) {
  const ProfileTimer profile_timer("rms_norm", x.shape());
  check(x, weight, bias);
  if (dry_run_active() || x.numel() == 0) return;
  const int64_t c = x.dim(-1);
  normalise_rows(x.data(), x.data(), x.numel() / c, c, weight.data(), bias.data(), eps, act);
}

}  // namespace vvae
