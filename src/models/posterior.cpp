#include "models/posterior.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dry_run.hpp"
#include "core/random.hpp"
#include "core/threads.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

template <typename Fn>
Tensor map(const Tensor& x, Fn fn) {
  Tensor y = Tensor::empty(x.shape());
  if (dry_run_active()) return y;
  const float* in = x.data();
  float* out = y.data();
  parallel_for(x.numel(), 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] = fn(in[i], i);
  });
  return y;
}

// Sums 0.5 * (mean^2 + var - 1 - logvar) over (C, H, W) for each (b, t).
std::vector<double> kl_terms(const Tensor& mean, const Tensor& logvar) {
  const int64_t B = mean.dim(0), C = mean.dim(1), T = mean.dim(2);
  const int64_t HW = mean.numel() / std::max<int64_t>(1, B * C * T);
  std::vector<double> out(static_cast<size_t>(B * T), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t off = ((b * C + c) * T + t) * HW;
        double s = 0.0;
        for (int64_t i = 0; i < HW; ++i) {
          const double m = mean.data()[off + i], lv = logvar.data()[off + i];
          s += m * m + std::exp(lv) - 1.0 - lv;
        }
        out[static_cast<size_t>(b * T + t)] += 0.5 * s;
      }
  return out;
}

}  // namespace

DiagonalGaussian DiagonalGaussian::from_moments(const Tensor& moments) {
  if (moments.rank() != 5 || moments.dim(1) % 2 != 0)
    fail("posterior moments must be (B, 2C, T, H, W), got ", to_string(moments.shape()));
  const int64_t B = moments.dim(0), C2 = moments.dim(1);
  Shape half = moments.shape();
  half[1] = C2 / 2;
  DiagonalGaussian g;
  g.mean_ = Tensor::empty(half);
  g.logvar_ = Tensor::empty(half);
  if (dry_run_active()) return g;
  const int64_t block = numel(half) / B;  // one sample's mean (or logvar) values
  for (int64_t b = 0; b < B; ++b) {
    const float* src = moments.data() + b * 2 * block;
    std::memcpy(g.mean_.data() + b * block, src, static_cast<size_t>(block) * sizeof(float));
    float* lv = g.logvar_.data() + b * block;
    for (int64_t i = 0; i < block; ++i) lv[i] = std::clamp(src[block + i], -30.0f, 20.0f);
  }
  return g;
}

Tensor DiagonalGaussian::std() const {
  return map(logvar_, [](float lv, int64_t) { return std::exp(0.5f * lv); });
}

Tensor DiagonalGaussian::var() const {
  return map(logvar_, [](float lv, int64_t) { return std::exp(lv); });
}

Tensor DiagonalGaussian::sample(uint64_t seed) const {
  Tensor z = Tensor::empty(mean_.shape());
  if (dry_run_active()) return z;
  const float* m = mean_.data();
  const float* lv = logvar_.data();
  float* out = z.data();
  parallel_for(z.numel(), 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      out[i] = m[i] + std::exp(0.5f * lv[i]) * normal_at(seed, static_cast<uint64_t>(i));
  });
  return z;
}

std::vector<double> DiagonalGaussian::kl_per_frame() const {
  return kl_terms(mean_, logvar_);
}

std::vector<double> DiagonalGaussian::kl_per_sample() const {
  const std::vector<double> frames = kl_terms(mean_, logvar_);
  const int64_t B = mean_.dim(0), T = mean_.dim(2);
  std::vector<double> out(static_cast<size_t>(B), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      out[static_cast<size_t>(b)] += frames[static_cast<size_t>(b * T + t)];
  return out;
}

void apply_latent_scale(Tensor& z, double scale, double shift) {
  if (dry_run_active()) return;
  const float s = static_cast<float>(scale), h = static_cast<float>(shift);
  float* p = z.data();
  parallel_for(z.numel(), 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) p[i] = s * (p[i] - h);
  });
}

void remove_latent_scale(Tensor& z, double scale, double shift) {
  if (dry_run_active()) return;
  const float s = static_cast<float>(scale), h = static_cast<float>(shift);
  float* p = z.data();
  parallel_for(z.numel(), 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) p[i] = p[i] / s + h;
  });
}

void divide_latent(Tensor& z, double factor) {
  if (dry_run_active()) return;
  const float f = static_cast<float>(factor);
  float* p = z.data();
  parallel_for(z.numel(), 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) p[i] /= f;
  });
}

void multiply_latent(Tensor& z, double factor) {
  if (dry_run_active()) return;
  const float f = static_cast<float>(factor);
  float* p = z.data();
  parallel_for(z.numel(), 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) p[i] *= f;
  });
}

}  // namespace vvae
