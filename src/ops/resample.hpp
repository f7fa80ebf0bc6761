#pragma once
// Resampling and padding of channels-last activations (N, spatial..., C).

#include <cstdint>
#include <vector>

#include "vvae/tensor.hpp"

namespace vvae {

// Nearest-neighbour upsampling by an integer factor per spatial dim (outermost first).
Tensor upsample_nearest(const Tensor& x, const std::vector<int64_t>& factors);

enum class PadMode { kZeros, kReplicate };

// Pads each spatial dim by lo[i] before and hi[i] after.
Tensor pad(const Tensor& x, const std::vector<int64_t>& lo, const std::vector<int64_t>& hi,
           PadMode mode);

}  // namespace vvae
