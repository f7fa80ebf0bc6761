#pragma once
// Normalisations on channels-last activations (N, positions..., C).

#include <cstdint>

#include "ops/elementwise.hpp"

#include "vvae/tensor.hpp"

namespace vvae {

// GroupNorm: statistics per (sample n, channel group) over every position of that sample (all
// frames for a 5-D input), then a per-channel affine; the activation is fused into the write.
Tensor group_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t groups,
                  float eps, Activation act = Activation::kNone);

}  // namespace vvae
