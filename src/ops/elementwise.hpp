#pragma once
// Element-wise kernels: activations and in-place arithmetic.

#include "ops/vector_math.hpp"
#include "vvae/tensor.hpp"

namespace vvae {

enum class Activation { kNone, kSilu, kRelu };

void activate_inplace(Tensor& x, Activation act);

// dst += src (same shapes).
void add_inplace(Tensor& dst, const Tensor& src);

// out[i] = v[i] * silu(g[i]) for i in [0, n).
void multiply_silu(const float* v, const float* g, int64_t n, float* out);

}  // namespace vvae
