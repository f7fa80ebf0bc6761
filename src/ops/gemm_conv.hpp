#pragma once
// Direct convolutions as tap-wise matrix products on channels-last activations: a segment of
// adjacent output pixels along W is the sum over the kernel taps of strided (pixels x C_in)
// views of the input (no im2col copy) times the tap's (C_in x C_out) weights, summed inside one
// LIBXSMM batch-reduce kernel that adds onto the bias (and the residual, when accumulating).
// For the strided (downsampling) and 1x1 convolutions that Winograd does not take. Zero padding
// is the taps and pixels left out; groups must be 1.
//
// Segments are cut by the shapes alone and every sum runs in the same order, so results are
// bitwise identical for any thread count.

#include <cstdint>
#include <memory>

#include "ops/conv.hpp"
#include "ops/gemm.hpp"
#include "vvae/tensor.hpp"

namespace vvae {

class GemmConv {
 public:
  GemmConv() = default;
  // weight (O, I, k...) in the checkpoint layout with geometry.spatial_dims kernel dims.
  GemmConv(WeightSource weight, Tensor bias, const ConvGeometry& geometry);

  // Whether a convolution of this weight shape and geometry can run here.
  static bool applies(const Shape& weight, const ConvGeometry& geometry);

  // dst (the convolution's output shape) = conv(x), or dst += conv(x) when `accumulate`.
  void run(const Tensor& x, Tensor& dst, bool accumulate) const;
  // The same from weights another kernel packed (WinogradConv's), never packing its own.
  void run(const Tensor& x, Tensor& dst, bool accumulate, const WeightPanels& weights) const;

 private:
  struct Packed;
  const float* packed_weights() const;  // (taps, filter blocks, C_in, 32), made once

  WeightSource weight_;
  Tensor bias_;
  ConvGeometry geometry_;
  int64_t out_channels_ = 0, in_channels_ = 0;
  int64_t kernel_[3] = {1, 1, 1};
  std::shared_ptr<Packed> packed_;
};

}  // namespace vvae
