#include "models/dcae/blocks.hpp"

#include "models/layers.hpp"
#include "ops/linear_attention.hpp"
#include "ops/pixel_shuffle.hpp"
#include "ops/resample.hpp"
#include "ops/rms_norm.hpp"
#include "vvae/error.hpp"

namespace vvae::dcae {

RMSNorm3d RMSNorm3d::load(const Scope& s, int64_t channels) {
  return {s.param("weight", {channels}), s.param("bias", {channels})};
}

void RMSNorm3d::apply(Tensor& x, Activation act) const {
  rms_norm_inplace(x, weight, bias, kRmsEps, act);
}

ConvLayer ConvLayer::load(const Scope& s, int64_t in, int64_t out, const Options& o) {
  ConvGeometry g = ConvGeometry::uniform(3, 1, o.kernel_size / 2);
  g.stride = o.stride;
  ConvLayer layer;
  const int64_t k = o.kernel_size;
  layer.conv = load_conv(s["conv"], in, out, {k, k, k}, g, o.use_bias);
  if (o.norm) layer.norm = RMSNorm3d::load(s["norm"], out);
  layer.act = o.act;
  return layer;
}

Tensor ConvLayer::operator()(const Tensor& x) const {
  Tensor y = conv(x);
  if (norm)
    norm->apply(y, act);
  else
    activate_inplace(y, act);
  return y;
}

Tensor OpSequential::operator()(Tensor x) const {
  for (const auto& op : op_list) x = (*op)(std::move(x));
  return x;
}

namespace {

// A depthwise Conv3d (groups == channels, zero padding k/2): weight (C, 1, k, k, k), then bias.
DepthwiseConv3d load_depthwise(const Scope& s, int64_t channels, int64_t k, bool bias) {
  Tensor w = s.param("weight", {channels, 1, k, k, k});
  Tensor b = bias ? s.param("bias", {channels}) : Tensor();
  return DepthwiseConv3d(w, b);
}

// EfficientViTBlock: context_module = ResidualBlock(LiteMLA), then local_module =
// ResidualBlock(GLUMBConv), each at "main" in its ResidualBlock.
class EfficientViTBlock : public Op {
 public:
  EfficientViTBlock(const Scope& s, int64_t c)
      : context_module{LiteMLA(s["context_module"]["main"], c)},
        local_module{GLUMBConv(s["local_module"]["main"], c)} {}

  Tensor operator()(Tensor x) const override { return local_module(context_module(std::move(x))); }

  ResidualBlock<LiteMLA> context_module;
  ResidualBlock<GLUMBConv> local_module;
};

// ResidualBlock(ResBlock, IdentityLayer): a "ResBlock" stage block.
class ResBlockOp : public Op {
 public:
  ResBlockOp(const Scope& s, int64_t c) : block{ResBlock(s["main"], c)} {}
  Tensor operator()(Tensor x) const override { return block(std::move(x)); }

  ResidualBlock<ResBlock> block;
};

}  // namespace

ResBlock::ResBlock(const Scope& s, int64_t c)
    : conv1(ConvLayer::load(s["conv1"], c, c, {.use_bias = true, .act = Activation::kSilu})),
      conv2(ConvLayer::load(s["conv2"], c, c, {.use_bias = false, .norm = true})) {}

LiteMLA::LiteMLA(const Scope& s, int64_t c) {
  const int64_t heads = c / kHeadDim, total = heads * kHeadDim;
  qkv = ConvLayer::load(s["qkv"], c, 3 * total, {.kernel_size = 1, .use_bias = false});
  ConvGeometry grouped = ConvGeometry::uniform(3, 1, 0);
  grouped.groups = 3 * heads;
  const Scope a = s["aggreg"][0];
  aggreg.push_back({load_depthwise(a[0], 3 * total, 5, false),
                    load_conv(a[1], 3 * total, 3 * total, {1, 1, 1}, grouped, false)});
  proj =
      ConvLayer::load(s["proj"], 2 * total, c, {.kernel_size = 1, .use_bias = false, .norm = true});
}

// (1, T, H, W, C) -> (1, T, H, W, C), not yet added to the input.
Tensor LiteMLA::operator()(const Tensor& x) const {
  const Tensor q = qkv(x);  // (.., 3 * heads * 32)
  std::vector<Tensor> multi_scale = {q};
  for (const Aggregation& a : aggreg) multi_scale.push_back(a.grouped(a.depthwise(q)));
  return proj(relu_linear_attention(multi_scale, kHeadDim, kAttentionEps));
}

GLUMBConv::GLUMBConv(const Scope& s, int64_t c)
    : inverted_conv(ConvLayer::load(s["inverted_conv"], c, 2 * kExpand * c,
                                    {.kernel_size = 1, .act = Activation::kSilu})),
      depth_conv(load_depthwise(s["depth_conv"]["conv"], 2 * kExpand * c, 3, true)),
      point_conv(ConvLayer::load(s["point_conv"], kExpand * c, c,
                                 {.kernel_size = 1, .use_bias = false, .norm = true})) {}

// (1, T, H, W, C) -> (1, T, H, W, C), not yet added to the input.
Tensor GLUMBConv::operator()(const Tensor& x) const {
  return point_conv(depth_conv(inverted_conv(x), DepthwiseOutput::kGluSilu));
}

std::unique_ptr<Op> make_stage_block(const std::string& type, const Scope& s, int64_t width) {
  if (type == "ResBlock") return std::make_unique<ResBlockOp>(s, width);
  if (type == "EViTS5_GLU") return std::make_unique<EfficientViTBlock>(s, width);
  fail("dcae block_type '", type, "' is not implemented (vvae has ResBlock and EViTS5_GLU)");
}

DownsampleBlock::DownsampleBlock(const Scope& s, int64_t in, int64_t out, bool temporal)
    : main(ConvLayer::load(s["main"], in, out, {.stride = {temporal ? 2 : 1, 2, 2}})),
      out_(out),
      temporal_(temporal) {}

Tensor DownsampleBlock::operator()(Tensor x) const {
  const bool t = temporal_ && x.dim(1) != 1;
  Tensor y = pixel_unshuffle_average(x, {t ? 2 : 1, 2, 2}, out_);  // the shortcut
  main.conv.accumulate(x, y);
  return y;
}

UpsampleBlock::UpsampleBlock(const Scope& s, int64_t in, int64_t out, bool temporal)
    : main{ConvLayer::load(s["main"]["conv"], in, out, {})}, out_(out), temporal_(temporal) {}

Tensor UpsampleBlock::operator()(Tensor x) const {
  const int64_t ft = temporal_ && x.dim(1) != 1 ? 2 : 1;
  Tensor y = duplicate_pixel_shuffle(x, {ft, 2, 2}, out_);  // the shortcut
  main.conv.conv.accumulate(upsample_nearest(x, {ft, 2, 2}), y);
  return y;
}

}  // namespace vvae::dcae
