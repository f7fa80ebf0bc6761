#pragma once
// Depthwise 3-D convolution (groups == channels), stride 1, zero padding k/2 on every side of T,
// H and W, k = 3 or 5, on channels-last activations (N, T, H, W, C). oneDNN 2.6 runs this shape
// through a slow generic path (well under 1 GFLOP/s here). With AVX-512 each thread takes
// 16-channel blocks, gathers a block frame by frame into a rolling window of k zero-padded
// frames and runs a register-blocked kernel over it (8 output pixels share every loaded tap);
// without AVX-512 plain loops over output rows, vectorised by the compiler, do the same sums.

#include <cstdint>
#include <string>

#include "core/isa.hpp"
#include "vvae/tensor.hpp"

namespace vvae {

// Which kernel depthwise convolutions run on this CPU (for `vvae info`).
std::string depthwise_kernel_name();

enum class DepthwiseOutput {
  kPlain,    // y
  kGluSilu,  // y[..., :C/2] * silu(y[..., C/2:]): the gating of Open-Sora's GLUMBConv, fused
};

class DepthwiseConv3d {
 public:
  DepthwiseConv3d() = default;
  // weight (C, 1, k, k, k), the checkpoint layout; bias (C) or undefined.
  DepthwiseConv3d(const Tensor& weight, const Tensor& bias);

  bool defined() const { return channels_ > 0; }
  int64_t channels() const { return channels_; }
  int64_t kernel() const { return kernel_; }
  Shape output_shape(const Shape& x, DepthwiseOutput out = DepthwiseOutput::kPlain) const;

  // (N, T, H, W, C) -> (N, T, H, W, C), or (N, T, H, W, C/2) for kGluSilu.
  Tensor operator()(const Tensor& x, DepthwiseOutput out = DepthwiseOutput::kPlain) const;
  // The register-blocked kernel built for `isa` (operator() uses cpu_isa()'s); for tests, which
  // must not ask for a level above the CPU's.
  Tensor run_at(const Tensor& x, Isa isa, DepthwiseOutput out = DepthwiseOutput::kPlain) const;
  // The same through plain loops over output rows: the reference the tests hold the
  // register-blocked kernel (every instruction set) against.
  Tensor run_portable(const Tensor& x, DepthwiseOutput out = DepthwiseOutput::kPlain) const;

 private:
  Tensor run(const Tensor& x, DepthwiseOutput out, const Isa* blocked) const;

  int64_t channels_ = 0;
  int64_t kernel_ = 0;
  Tensor taps_;  // (k, k, k, C): the weight with the channel dim innermost
  Tensor bias_;  // (C), zeros when the layer has none
};

}  // namespace vvae
