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

float activated(float v, Activation act) {
  switch (act) {
    case Activation::kRelu:
      return v > 0.0f ? v : 0.0f;
    case Activation::kSilu:
      return silu_fast(v);
    case Activation::kNone:
      break;
  }
  return v;
}

// in and out may be the same row.
void normalise_rows(const float* in, float* out, int64_t rows, int64_t c, const float* weight,
                    const float* bias, float eps, Activation act) {
  parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* x = in + r * c;
      float* y = out + r * c;
      double sum = 0.0;
      for (int64_t i = 0; i < c; ++i) {
        const float sq = x[i] * x[i];  // rounded to float32, as torch.square(x.float())
        sum += sq;
      }
      const float mean = static_cast<float>(sum / static_cast<double>(c));
      const float denom = std::sqrt(mean + eps);
      for (int64_t i = 0; i < c; ++i) y[i] = activated(x[i] / denom * weight[i] + bias[i], act);
    }
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
