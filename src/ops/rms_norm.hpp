#pragma once
// RMSNorm over the channels of channels-last activations (N, positions..., C): Open-Sora's
// RMSNorm2d / RMSNorm3d (opensora/models/dc_ae/models/nn/norm.py), which has a weight AND a bias.

#include "ops/elementwise.hpp"
#include "vvae/tensor.hpp"

namespace vvae {

// Per position: y = x / sqrt(mean_c(x^2) + eps) * weight + bias, then `act`.
// The statistic is a float32 number, as upstream takes it from x.float(): the squares are
// rounded to float32, summed in double and the mean rounded to float32 (the float32 mean of
// those squares, without float32 summation error); eps is added and the root taken in float32.
// Overwrites x.
void rms_norm_inplace(Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                      Activation act = Activation::kNone);

}  // namespace vvae
