#include "models/dcae/blocks.hpp"

#include "models/layers.hpp"
#include "ops/linear_attention.hpp"
#include "ops/pixel_shuffle.hpp"
#include "ops/resample.hpp"
#include "ops/rms_norm.hpp"
#include "vvae/error.hpp"

namespace vvae::dcae {

RmsNorm RmsNorm::load(const Scope& s, int64_t channels) {
  return {s.param("weight", {channels}), s.param("bias", {channels})};
}

void RmsNorm::apply(Tensor& x, Activation act) const {
  rms_norm_inplace(x, weight, bias, kRmsEps, act);
}

ConvLayer ConvLayer::load(const Scope& s, int64_t in, int64_t out, const Options& o) {
  ConvGeometry g = ConvGeometry::uniform(3, 1, o.kernel / 2);
  g.stride = o.stride;
  ConvLayer layer;
  layer.conv = load_conv(s["conv"], in, out, {o.kernel, o.kernel, o.kernel}, g, o.bias);
  if (o.norm) layer.norm = RmsNorm::load(s["norm"], out);
  layer.act = o.act;
  return layer;
}

Tensor ConvLayer::operator()(const Tensor& x) const {
  Tensor y = conv(x);
  if (norm.defined())
    norm.apply(y, act);
  else
    activate_inplace(y, act);
  return y;
}

namespace {

ConvLayer pointwise(const Scope& s, int64_t in, int64_t out, bool bias, bool norm,
                    Activation act = Activation::kNone) {
  return ConvLayer::load(s, in, out, {1, {1, 1, 1}, bias, norm, act});
}

// A depthwise Conv3d (groups == channels, zero padding k/2): weight (C, 1, k, k, k), then bias.
DepthwiseConv3d depthwise(const Scope& s, int64_t channels, int64_t k, bool bias) {
  Tensor w = s.param("weight", {channels, 1, k, k, k});
  Tensor b = bias ? s.param("bias", {channels}) : Tensor();
  return DepthwiseConv3d(w, b);
}

// ResBlock inside ResidualBlock(main, IdentityLayer).
class ResBlock : public StageBlock {
 public:
  ResBlock(const Scope& s, int64_t c)
      : conv1_(ConvLayer::load(s["main"]["conv1"], c, c, {3, {1, 1, 1}, true, false, kSilu})),
        conv2_(ConvLayer::load(s["main"]["conv2"], c, c, {3, {1, 1, 1}, false, true})) {}

  Tensor operator()(Tensor x) const override {
    Tensor y = conv2_(conv1_(x));
    add_inplace(y, x);
    return y;
  }

 private:
  static constexpr Activation kSilu = Activation::kSilu;
  ConvLayer conv1_;  // (1, T, H, W, C) -> (1, T, H, W, C), SiLU
  ConvLayer conv2_;  // (1, T, H, W, C) -> (1, T, H, W, C), RMSNorm3d
};

// LiteMLA (heads = C / 32, dim 32, no biases, scales (5,)):
//   qkv = main.qkv (1x1x1, C -> 3 * heads * 32)
//   agg = main.aggreg.0.1 (1x1x1, 3 * heads groups)(main.aggreg.0.0 (depthwise 5x5x5)(qkv))
//   out = main.proj (1x1x1, 2 * heads * 32 -> C, RMSNorm3d)(relu_linear_attention([qkv, agg]))
class LiteMla {
 public:
  LiteMla(const Scope& s, int64_t c) : heads_(c / kHeadDim) {
    const int64_t total = heads_ * kHeadDim;
    qkv_ = pointwise(s["qkv"], c, 3 * total, false, false);
    const Scope aggreg = s["aggreg"][0];
    aggreg_depthwise_ = depthwise(aggreg[0], 3 * total, 5, false);
    ConvGeometry grouped = ConvGeometry::uniform(3, 1, 0);
    grouped.groups = 3 * heads_;
    aggreg_pointwise_ = load_conv(aggreg[1], 3 * total, 3 * total, {1, 1, 1}, grouped, false);
    proj_ = pointwise(s["proj"], 2 * total, c, false, true);
  }

  // (1, T, H, W, C) -> (1, T, H, W, C), not yet added to the input.
  Tensor operator()(const Tensor& x) const {
    const Tensor qkv = qkv_(x);                                    // (.., 3 * heads * 32)
    const Tensor agg = aggreg_pointwise_(aggreg_depthwise_(qkv));  // (.., 3 * heads * 32)
    return proj_(relu_linear_attention({qkv, agg}, kHeadDim, kAttentionEps));
  }

 private:
  int64_t heads_;
  ConvLayer qkv_;
  DepthwiseConv3d aggreg_depthwise_;
  Conv aggreg_pointwise_;
  ConvLayer proj_;
};

// GLUMBConv (expand 4, mid = 4C):
//   main.inverted_conv (1x1x1, C -> 8C, bias, SiLU) -> main.depth_conv (depthwise 3x3x3, bias)
//   -> x[:4C] * silu(x[4C:]) -> main.point_conv (1x1x1, 4C -> C, no bias, RMSNorm3d)
class GluMbConv {
 public:
  GluMbConv(const Scope& s, int64_t c)
      : inverted_(
            pointwise(s["inverted_conv"], c, 2 * kExpand * c, true, false, Activation::kSilu)),
        depth_(depthwise(s["depth_conv"]["conv"], 2 * kExpand * c, 3, true)),
        point_(pointwise(s["point_conv"], kExpand * c, c, false, true)) {}

  // (1, T, H, W, C) -> (1, T, H, W, C), not yet added to the input.
  Tensor operator()(const Tensor& x) const {
    return point_(depth_(inverted_(x), DepthwiseOutput::kGluSilu));
  }

 private:
  ConvLayer inverted_;
  DepthwiseConv3d depth_;
  ConvLayer point_;
};

class EfficientVitBlock : public StageBlock {
 public:
  EfficientVitBlock(const Scope& s, int64_t c)
      : context_(s["context_module"]["main"], c), local_(s["local_module"]["main"], c) {}

  Tensor operator()(Tensor x) const override {
    Tensor y = context_(x);
    add_inplace(y, x);
    x = Tensor();
    Tensor z = local_(y);
    add_inplace(z, y);
    return z;
  }

 private:
  LiteMla context_;
  GluMbConv local_;
};

}  // namespace

std::unique_ptr<StageBlock> make_stage_block(const std::string& type, const Scope& s,
                                             int64_t width) {
  if (type == "ResBlock") return std::make_unique<ResBlock>(s, width);
  if (type == "EViTS5_GLU") return std::make_unique<EfficientVitBlock>(s, width);
  fail("dcae block_type '", type, "' is not implemented (vvae has ResBlock and EViTS5_GLU)");
}

DownsampleBlock::DownsampleBlock(const Scope& s, int64_t in, int64_t out, bool temporal)
    : main_(ConvLayer::load(s["main"], in, out, {3, {temporal ? 2 : 1, 2, 2}, true, false})),
      out_(out),
      temporal_(temporal) {}

Tensor DownsampleBlock::operator()(const Tensor& x) const {
  const bool t = temporal_ && x.dim(1) != 1;
  Tensor y = pixel_unshuffle_average(x, {t ? 2 : 1, 2, 2}, out_);
  main_.conv.accumulate(x, y);
  return y;
}

UpsampleBlock::UpsampleBlock(const Scope& s, int64_t in, int64_t out, bool temporal)
    : conv_(ConvLayer::load(s["main"]["conv"], in, out, {3, {1, 1, 1}, true, false})),
      out_(out),
      temporal_(temporal) {}

Tensor UpsampleBlock::operator()(const Tensor& x) const {
  const int64_t ft = temporal_ && x.dim(1) != 1 ? 2 : 1;
  Tensor y = duplicate_pixel_shuffle(x, {ft, 2, 2}, out_);
  conv_.conv.accumulate(upsample_nearest(x, {ft, 2, 2}), y);
  return y;
}

}  // namespace vvae::dcae
