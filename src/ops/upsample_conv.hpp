#pragma once
// Nearest-neighbour x2 upsampling followed by a stride-1 convolution with 3-tap kernels on the
// upsampled axes, computed without the upsampled tensor. Output position 2i + a along an
// upsampled axis reads low-resolution pixels (i - 1, i) when a = 0 and (i, i + 1) when a = 1,
// so each of the 2^u output phases is a convolution of the low-resolution input with 2-tap
// kernels whose taps are the sums of the 3-tap weights that land on the same pixel: 4/9 of the
// direct work in 2-D (8/27 in 3-D), and no 4x (8x) larger intermediate. That is the direct path
// (--conv-algo direct, and shapes Winograd does not take); otherwise vvae's Winograd convolution
// reads the upsampled input through its index maps (1/4 of the direct work, no intermediate
// either). The phase kernels are only made when the direct path first runs.

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/weight_source.hpp"
#include "ops/conv.hpp"
#include "vvae/tensor.hpp"

namespace vvae {

class WinogradConv;

class UpsampleConv {
 public:
  UpsampleConv() = default;
  // weight (O, I, k...) with k = 3 on every upsampled axis; `upsampled` per spatial dim,
  // outermost first (e.g. {false, true, true} for H, W of a 3-D input).
  UpsampleConv(const WeightSource& weight, const Tensor& bias, int spatial_dims,
               std::array<bool, 3> upsampled);

  bool defined() const { return state_ != nullptr; }
  int64_t out_channels() const { return out_channels_; }

  // x_padded: the low-resolution input, channels-last, already padded by one on both sides of
  // every upsampled axis (zeros or replicate: the padding of the upsampled tensor maps onto it)
  // and as the convolution needs on the other axes. Returns the convolution of the upsampled
  // input, twice the unpadded size on each upsampled axis.
  Tensor operator()(const Tensor& x_padded) const;
  // The same of pad(x, ...), whose upsampled axes must be padded by one on both sides: on the
  // Winograd path the padding is read through index maps, never copied.
  Tensor padded(const Tensor& x, const PadSpec& pad) const;

 private:
  struct State;
  Tensor run_phases(const Tensor& x, const Shape& out_shape) const;
  Tensor run(const Tensor& x, const PadSpec* pad) const;

  int spatial_dims_ = 2;
  std::array<bool, 3> upsampled_{};
  std::array<int64_t, 3> kernel_{1, 1, 1};
  int64_t in_channels_ = 0, out_channels_ = 0;
  std::shared_ptr<State> state_;
};

}  // namespace vvae
