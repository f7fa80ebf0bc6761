#pragma once
// DiagonalGaussianDistribution (opensora/models/vae/utils.py): the encoder's moments split on the
// channel axis into [mean | logvar], logvar clamped to [-30, 20].

#include <cstdint>
#include <vector>

#include "vvae/tensor.hpp"

namespace vvae {

class DiagonalGaussian {
 public:
  // moments: (B, 2C, T, H, W)
  static DiagonalGaussian from_moments(const Tensor& moments);

  const Tensor& mean() const { return mean_; }
  const Tensor& logvar() const { return logvar_; }
  Tensor mode() const { return mean_.clone(); }
  Tensor std() const;  // exp(0.5 logvar)
  Tensor var() const;  // exp(logvar)
  // mean + std * eps with eps ~ N(0, 1) drawn by element index from `seed`: the same seed gives
  // the same sample whatever the thread count.
  Tensor sample(uint64_t seed) const;

  // KL divergence to N(0, I): 0.5 * sum(mean^2 + var - 1 - logvar).
  // Summed over C, H, W: one value per frame, (B * T) values, b-major (the 2D AE's convention).
  std::vector<double> kl_per_frame() const;
  // Summed over every non-batch dim: B values (the causal 3D VAE's convention).
  std::vector<double> kl_per_sample() const;

 private:
  Tensor mean_, logvar_;
};

// z = scale * (z - shift), the upstream encode() order of operations.
void apply_latent_scale(Tensor& z, double scale, double shift);
// z = z / scale + shift, the upstream decode() order.
void remove_latent_scale(Tensor& z, double scale, double shift);
// z = z / factor and z = z * factor: a deterministic latent's scaling (the DC-AE's
// scaling_factor), in float32 as upstream.
void divide_latent(Tensor& z, double factor);
void multiply_latent(Tensor& z, double factor);

}  // namespace vvae
