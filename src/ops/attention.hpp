#pragma once
// Single-head scaled dot-product attention that never materialises the L x L score matrix:
// queries are processed in blocks against blocks of keys with an online softmax, so memory is
// O(L * D) however many tokens there are (a 1024x1024 frame has 16384 at the Flux mid block).

#include <cstdint>

#include "vvae/tensor.hpp"

namespace vvae {

// q, k, v: (N, L, D). Returns softmax(q k^T * scale) v, (N, L, D).
// frame_tokens > 0 applies the frame-causal mask by block structure: a query in frame
// f = i / frame_tokens attends to the keys of frames 0..f only.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                 int64_t frame_tokens = 0);

}  // namespace vvae
