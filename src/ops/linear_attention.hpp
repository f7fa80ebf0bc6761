#pragma once
// ReLU linear attention, the kernel of Open-Sora's LiteMLA
// (opensora/models/dc_ae/models/nn/ops.py, relu_linear_att), global over all the tokens of a
// sample, accumulated in float32. For each head, with q, k, v its (L, dim) slices:
//     q = relu(q), k = relu(k), v_pad = [v | 1]            (the ones column upstream pads)
//     o = q (v_pad^T k)^T                                   ((L, dim + 1), via two GEMMs)
//     out = o[:, :dim] / (o[:, dim] + eps)
// Cost O(L * dim^2) per head: the L x L attention matrix never exists.

#include <cstdint>
#include <vector>

#include "vvae/tensor.hpp"

namespace vvae {

// parts: channels-last tensors (N, positions..., C_i) of one shape but the channel count; each
// C_i is a whole number of heads of 3 * dim channels laid out [q | k | v]. The heads of all parts,
// in order, are the heads of the attention (upstream concatenates the parts on channels first).
// Returns (N, positions..., dim * heads), head h in channels [h * dim, (h + 1) * dim).
Tensor relu_linear_attention(const std::vector<Tensor>& parts, int64_t dim, float eps);

}  // namespace vvae
