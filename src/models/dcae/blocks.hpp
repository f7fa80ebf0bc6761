#pragma once
// The building blocks of Open-Sora's Video DC-AE (opensora/models/dc_ae/models/nn/ops.py) on
// channels-last video activations (1, T, H, W, C). Each takes its weights from the Scope whose
// path is its upstream module path, so "main.conv1.conv.weight" below a block's scope is the
// checkpoint key upstream gives it.

#include <array>
#include <cstdint>
#include <memory>

#include "models/weights.hpp"
#include "ops/conv.hpp"
#include "ops/depthwise.hpp"
#include "ops/elementwise.hpp"

namespace vvae::dcae {

constexpr float kRmsEps = 1e-5f;         // RMSNorm2d / RMSNorm3d default
constexpr int64_t kHeadDim = 32;         // EfficientViTBlock's LiteMLA dim
constexpr float kAttentionEps = 1e-15f;  // LiteMLA eps
constexpr int64_t kExpand = 4;           // GLUMBConv expand_ratio in EfficientViTBlock

// RMSNorm3d: "weight" and "bias" (C).
struct RmsNorm {
  Tensor weight, bias;
  static RmsNorm load(const Scope& s, int64_t channels);
  bool defined() const { return weight.numel() > 0; }
  void apply(Tensor& x, Activation act = Activation::kNone) const;
};

// ConvLayer (video): zero padding k/2 on T, H and W, then Conv3d ("conv"), then the optional
// RMSNorm3d ("norm") and activation.
struct ConvLayer {
  Conv conv;
  RmsNorm norm;
  Activation act = Activation::kNone;

  struct Options {
    int64_t kernel = 3;
    std::array<int64_t, 3> stride{1, 1, 1};
    bool bias = true;
    bool norm = false;
    Activation act = Activation::kNone;
  };
  static ConvLayer load(const Scope& s, int64_t in, int64_t out, const Options& o);
  Tensor operator()(const Tensor& x) const;
};

// A stage block: ResidualBlock(main, IdentityLayer) around a ResBlock or an EfficientViTBlock.
class StageBlock {
 public:
  virtual ~StageBlock() = default;
  // (1, T, H, W, C) -> (1, T, H, W, C)
  virtual Tensor operator()(Tensor x) const = 0;
};

// "ResBlock": main.conv1 (k3, bias, SiLU) -> main.conv2 (k3, no bias, RMSNorm3d), + x.
// "EViTS5_GLU": context_module = ResidualBlock(LiteMLA with the 5x5x5 aggregation), then
//               local_module = ResidualBlock(GLUMBConv).
// Throws for other block types.
std::unique_ptr<StageBlock> make_stage_block(const std::string& type, const Scope& s,
                                             int64_t width);

// The encoder's downsampling block: ResidualBlock(main = ConvLayer k3 stride (2|1, 2, 2) with
// bias, shortcut = PixelUnshuffleChannelAveraging). Temporal downsampling (stride and 3-D
// unshuffle) applies only when `temporal` and the input has more than one frame; a single frame
// goes through the same convolution (its padding frames are zeros) and a per-frame unshuffle.
class DownsampleBlock {
 public:
  DownsampleBlock(const Scope& s, int64_t in, int64_t out, bool temporal);
  Tensor operator()(const Tensor& x) const;  // (1, T, H, W, in) -> (1, T', H/2, W/2, out)

 private:
  ConvLayer main_;
  int64_t out_;
  bool temporal_;
};

// The decoder's upsampling block: ResidualBlock(main = InterpolateConv: nearest x2 in (T,) H, W
// then ConvLayer k3 with bias ("main.conv"), shortcut = ChannelDuplicatingPixelShuffle);
// temporal only when `temporal` and T > 1.
class UpsampleBlock {
 public:
  UpsampleBlock(const Scope& s, int64_t in, int64_t out, bool temporal);
  Tensor operator()(const Tensor& x) const;  // (1, T, H, W, in) -> (1, T', 2H, 2W, out)

 private:
  ConvLayer conv_;
  int64_t out_;
  bool temporal_;
};

}  // namespace vvae::dcae
