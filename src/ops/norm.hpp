#pragma once
// Normalisations on channels-last activations (N, positions..., C).

#include <cstdint>

#include "ops/elementwise.hpp"

#include "vvae/tensor.hpp"

namespace vvae {

// GroupNorm: statistics per (sample n, channel group) over every position of that sample (all
// frames for a 5-D input), then a per-channel affine; the activation is fused into the write.
// Written over x when no other tensor shares its storage (pass a temporary, or std::move), so
// a block's intermediate activation is normalised in place.
Tensor group_norm(Tensor x, const Tensor& gamma, const Tensor& beta, int64_t groups, float eps,
                  Activation act = Activation::kNone);

}  // namespace vvae
