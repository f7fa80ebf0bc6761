#pragma once
// Layers shared by the model families: each binds its weights from a Scope under the upstream
// parameter names ("weight", "bias") and runs on channels-last activations.

#include <cstdint>
#include <utility>
#include <vector>

#include "models/weights.hpp"
#include "ops/conv.hpp"
#include "ops/norm.hpp"
#include "ops/upsample_conv.hpp"

namespace vvae {

// nn.Conv2d / nn.Conv3d: weight (O, I/groups, k...), optional bias (O).
Conv load_conv(const Scope& scope, int64_t in, int64_t out, const std::vector<int64_t>& kernel,
               const ConvGeometry& geometry, bool bias = true);

// nn.Linear (O, I) applied to the channel dim, run as a 1x1 convolution of `spatial_dims`.
Conv load_linear(const Scope& scope, int64_t in, int64_t out, int spatial_dims, bool bias = true);

// Nearest x2 upsampling on the `upsampled` axes then a 3-tap convolution (weights as for
// load_conv with kernel 3 everywhere), run as UpsampleConv phases.
UpsampleConv load_upsample_conv(const Scope& scope, int64_t in, int64_t out, int spatial_dims,
                                std::array<bool, 3> upsampled);

// nn.GroupNorm with affine weight and bias.
struct GroupNorm {
  Tensor weight, bias;
  int64_t groups = 1;
  float eps = 1e-6f;

  static GroupNorm load(const Scope& scope, int64_t channels, int64_t groups, float eps);
  // In place when x's storage is its own (ops/norm.hpp).
  Tensor operator()(Tensor x, Activation act = Activation::kNone) const {
    return group_norm(std::move(x), weight, bias, groups, eps, act);
  }
};

// x if nobody else holds its storage, else a copy: lets a residual block add into its input.
Tensor take_for_update(Tensor x);

}  // namespace vvae
