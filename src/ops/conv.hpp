#pragma once
// N-dimensional convolution (2-D and 3-D) on channels-last activations through oneDNN.
// Activations are (N, [D,] H, W, C) row-major; weights keep the checkpoint layout
// (O, I/groups, [kD,] kH, kW) and are packed once per oneDNN weight format, on first use.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/weight_source.hpp"
#include "ops/resample.hpp"
#include "vvae/compute.hpp"
#include "vvae/tensor.hpp"

namespace vvae {

struct ConvGeometry {
  int spatial_dims = 2;                    // 2: (H, W), 3: (D, H, W)
  std::array<int64_t, 3> stride{1, 1, 1};  // per spatial dim, outermost first
  std::array<int64_t, 3> pad_lo{0, 0, 0};  // zero padding before
  std::array<int64_t, 3> pad_hi{0, 0, 0};  // zero padding after
  int64_t groups = 1;
  // Count this convolution's FLOPs in the benchmarks' direct-convolution total (off for the
  // pieces of a decomposed convolution that counts its direct equivalent itself).
  bool counted = true;

  // Same stride and symmetric zero padding `pad` on every spatial dim.
  static ConvGeometry uniform(int spatial_dims, int64_t stride, int64_t pad);
};

// Refuses, in one line naming the missing CPU feature, a mode this CPU (or VVAE_MAX_ISA) cannot
// run, rather than run something else under its name.
void check_compute_mode(const ComputeOptions& mode);
// What convolutions run in `mode` on this CPU, one line per kind of convolution.
std::vector<std::string> conv_kernel_report(const ComputeOptions& mode);

// Whether `mode` runs 3x3 stride-1 convolutions through vvae's Winograd kernels.
bool winograd_selected(const ComputeOptions& mode);

// The compute mode convolutions on this thread run in; models set it around a run.
ComputeOptions current_compute_options();
class ComputeScope {
 public:
  explicit ComputeScope(const ComputeOptions& options);
  ~ComputeScope();
  ComputeScope(const ComputeScope&) = delete;
  ComputeScope& operator=(const ComputeScope&) = delete;

 private:
  ComputeOptions previous_;
};

// Padding a model applies before a convolution, per spatial dim (outermost first).
struct PadSpec {
  std::vector<int64_t> lo, hi;
  PadMode mode = PadMode::kZeros;
};

class Conv {
 public:
  Conv() = default;
  // weight: (O, I/groups, k...) with spatial_dims kernel dims; bias: (O) or undefined.
  Conv(WeightSource weight, Tensor bias, ConvGeometry geometry);

  bool defined() const { return impl_ != nullptr; }
  int64_t in_channels() const;
  int64_t out_channels() const;
  Shape output_shape(const Shape& x) const;

  // x (N, [D,] H, W, C_in) -> (N, [D',] H', W', C_out)
  Tensor operator()(const Tensor& x) const;
  // dst += conv(x), fused into the convolution (dst must have the output shape).
  void accumulate(const Tensor& x, Tensor& dst) const;
  // conv(pad(x, ...)) and dst += conv(pad(x, ...)): on the Winograd path the padding is read
  // through index maps, never copied; the other paths pad a copy.
  Tensor padded(const Tensor& x, const PadSpec& pad) const;
  void accumulate_padded(const Tensor& x, const PadSpec& pad, Tensor& dst) const;

 private:
  struct Impl;
  void run(const Tensor& x, Tensor& dst, bool accumulate, const PadSpec* extra) const;
  std::string profile_name(const char* algorithm) const;  // "conv winograd 3x3x3", ...
  std::string profile_shape(const Shape& x) const;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vvae
