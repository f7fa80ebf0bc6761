#pragma once
// Space <-> channel rearrangements of channels-last video activations (N, T, H, W, C), with
// upstream's channel orders, and the parameter-free shortcuts the Video DC-AE builds from them
// (opensora/models/dc_ae/models/nn/{ops,vo_ops}.py).
//
// Factors are {ft, fh, fw}. Unshuffled channel j of an input channel c is
//     j = c * ft*fh*fw + (it * fh + ih) * fw + iw
// for the input voxel (t*ft + it, h*fh + ih, w*fw + iw): upstream's pixel_unshuffle_3d order
// (c, rt, rh, rw) for ft = 2, and F.pixel_unshuffle applied frame by frame (c, rh, rw) for ft = 1.

#include <array>
#include <cstdint>

#include "vvae/tensor.hpp"

namespace vvae {

using Factors3 = std::array<int64_t, 3>;  // {ft, fh, fw}

// (N, T, H, W, C) -> (N, T/ft, H/fh, W/fw, C*ft*fh*fw).
Tensor pixel_unshuffle(const Tensor& x, const Factors3& f);
// The inverse: (N, T, H, W, C*ft*fh*fw) -> (N, T*ft, H*fh, W*fw, C).
Tensor pixel_shuffle(const Tensor& x, const Factors3& f);

// PixelUnshuffleChannelAveragingDownSampleLayer: pixel_unshuffle, then the mean of each run of
// C*ft*fh*fw / out_channels consecutive channels -> (N, T/ft, H/fh, W/fw, out_channels).
Tensor pixel_unshuffle_average(const Tensor& x, const Factors3& f, int64_t out_channels);

// ChannelDuplicatingPixelShuffleUpSampleLayer: every channel repeated
// out_channels*ft*fh*fw / C times in place (repeat_interleave), then pixel_shuffle
// -> (N, T*ft, H*fh, W*fw, out_channels).
Tensor duplicate_pixel_shuffle(const Tensor& x, const Factors3& f, int64_t out_channels);

}  // namespace vvae
