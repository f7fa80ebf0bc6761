#pragma once
// Element-wise kernels: activations and in-place arithmetic.

#include <cmath>

#include "vvae/tensor.hpp"

namespace vvae {

enum class Activation { kNone, kSilu, kRelu };

inline float silu(float v) {
  return v / (1.0f + std::exp(-v));
}

inline float activate(float v, Activation act) {
  switch (act) {
    case Activation::kSilu:
      return silu(v);
    case Activation::kRelu:
      return v > 0.0f ? v : 0.0f;
    case Activation::kNone:
      break;
  }
  return v;
}

void activate_inplace(Tensor& x, Activation act);

// dst += src (same shapes).
void add_inplace(Tensor& dst, const Tensor& src);

}  // namespace vvae
