#pragma once
// The building blocks of Open-Sora's Video DC-AE (opensora/models/dc_ae/models/nn/ops.py) on
// channels-last video activations (1, T, H, W, C), named and nested as upstream's modules: each
// member is the attribute upstream gives it, so its weights sit at the checkpoint key that path
// spells ("stages.3.op_list.0.context_module.main.qkv.conv.weight"). Where upstream indexes a
// list (OpSequential's op_list, aggreg.0.0), the comment on the member says which index.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/weights.hpp"
#include "ops/conv.hpp"
#include "ops/depthwise.hpp"
#include "ops/elementwise.hpp"

namespace vvae::dcae {

constexpr float kRmsEps = 1e-5f;         // RMSNorm2d / RMSNorm3d default
constexpr int64_t kHeadDim = 32;         // EfficientViTBlock's LiteMLA dim
constexpr float kAttentionEps = 1e-15f;  // LiteMLA eps
constexpr int64_t kExpand = 4;           // GLUMBConv expand_ratio in EfficientViTBlock

// RMSNorm3d: "weight" and "bias" (C), over the channels.
struct RMSNorm3d {
  Tensor weight, bias;
  static RMSNorm3d load(const Scope& s, int64_t channels);
  void apply(Tensor& x, Activation act = Activation::kNone) const;  // in place, then `act`
};

// ConvLayer (video): zero padding kernel_size / 2 on T, H and W, the Conv3d "conv", then the
// RMSNorm3d "norm" (when `norm`) and the activation.
struct ConvLayer {
  struct Options {
    int64_t kernel_size = 3;
    std::array<int64_t, 3> stride{1, 1, 1};
    bool use_bias = true;
    bool norm = false;  // RMSNorm3d
    Activation act = Activation::kNone;
  };
  static ConvLayer load(const Scope& s, int64_t in, int64_t out, const Options& options);
  Tensor operator()(const Tensor& x) const;  // (1, T, H, W, in) -> (1, T', H', W', out)

  Conv conv;
  std::optional<RMSNorm3d> norm;
  Activation act = Activation::kNone;
};

// One module of a stage's op_list: (1, T, H, W, C) -> (1, T', H', W', C').
class Op {
 public:
  virtual ~Op() = default;
  virtual Tensor operator()(Tensor x) const = 0;
};

// OpSequential: its modules in order, "op_list.{i}".
struct OpSequential {
  std::vector<std::unique_ptr<Op>> op_list;
  Tensor operator()(Tensor x) const;
};

// ResidualBlock(main, IdentityLayer): main(x) + x, main at "main".
template <typename Main>
struct ResidualBlock {
  Main main;
  Tensor operator()(Tensor x) const {
    Tensor y = main(x);
    add_inplace(y, x);
    return y;
  }
};

// ResBlock: conv1 (k3, bias, SiLU) -> conv2 (k3, no bias, RMSNorm3d).
struct ResBlock {
  ResBlock(const Scope& s, int64_t c);
  Tensor operator()(const Tensor& x) const { return conv2(conv1(x)); }

  ConvLayer conv1, conv2;
};

// LiteMLA (heads = C / 32, dim 32, no biases, scales (5,)): qkv (1x1x1, C -> 3 * heads * 32),
// the multi-scale aggregation of qkv, ReLU linear attention over [qkv, aggregated], proj
// (1x1x1, 2 * heads * 32 -> C, RMSNorm3d).
struct LiteMLA {
  LiteMLA(const Scope& s, int64_t c);
  Tensor operator()(const Tensor& x) const;

  // aggreg.{i}: Sequential(depthwise 5x5x5 (aggreg.{i}.0), grouped 1x1x1 (aggreg.{i}.1)).
  struct Aggregation {
    DepthwiseConv3d depthwise;  // .0
    Conv grouped;               // .1, groups 3 * heads
  };
  ConvLayer qkv;
  std::vector<Aggregation> aggreg;
  ConvLayer proj;
};

// GLUMBConv (expand 4, mid = 4C): inverted_conv (1x1x1, C -> 8C, bias, SiLU) -> depth_conv
// (depthwise 3x3x3, bias, at depth_conv.conv) -> x[:4C] * silu(x[4C:]) (fused into depth_conv)
// -> point_conv (1x1x1, 4C -> C, no bias, RMSNorm3d).
struct GLUMBConv {
  GLUMBConv(const Scope& s, int64_t c);
  Tensor operator()(const Tensor& x) const;

  ConvLayer inverted_conv;
  DepthwiseConv3d depth_conv;
  ConvLayer point_conv;
};

// A stage block of type "ResBlock" or "EViTS5_GLU" (EfficientViTBlock: context_module then
// local_module); throws for other types.
std::unique_ptr<Op> make_stage_block(const std::string& type, const Scope& s, int64_t width);

// The encoder's downsampling: ResidualBlock(main = ConvLayer k3 stride (2|1, 2, 2) with bias,
// shortcut = PixelUnshuffleChannelAveragingDownSampleLayer), the shortcut's output the
// convolution's accumulator. Temporal downsampling (stride and 3-D unshuffle) applies only when
// `temporal` and the input has more than one frame; a single frame goes through the same
// convolution (its padding frames are zeros) and a per-frame unshuffle.
class DownsampleBlock : public Op {
 public:
  DownsampleBlock(const Scope& s, int64_t in, int64_t out, bool temporal);
  Tensor operator()(Tensor x) const override;  // (1, T, H, W, in) -> (1, T', H/2, W/2, out)

  ConvLayer main;

 private:
  int64_t out_;
  bool temporal_;
};

// The decoder's upsampling: ResidualBlock(main = InterpolateConvUpSampleLayer (nearest x2 in
// (T,) H, W, then its ConvLayer "conv", k3 with bias), shortcut =
// ChannelDuplicatingPixelShuffleUpSampleLayer); temporal only when `temporal` and T > 1.
class UpsampleBlock : public Op {
 public:
  UpsampleBlock(const Scope& s, int64_t in, int64_t out, bool temporal);
  Tensor operator()(Tensor x) const override;  // (1, T, H, W, in) -> (1, T', 2H, 2W, out)

  struct InterpolateConv {
    ConvLayer conv;
  };
  InterpolateConv main;

 private:
  int64_t out_;
  bool temporal_;
};

}  // namespace vvae::dcae
