// Module tree (upstream names; a weight key reads as a path through it):
//
//   AutoencoderKLCausal3D
//   ├── encoder (EncoderCausal3D): conv_in.conv,
//   │     down_blocks.{i}: resnets.{j} (ResnetBlockCausal3D), downsamplers.0.conv.conv,
//   │     mid_block: resnets.0, attentions.0 (group_norm, to_q, to_k, to_v, to_out.0), resnets.1,
//   │     conv_norm_out, conv_out.conv                              -> 2 * latent_channels
//   ├── quant_conv (plain 1x1x1 Conv3d)                               -> moments [mean | logvar]
//   ├── post_quant_conv (plain 1x1x1 Conv3d)
//   └── decoder (DecoderCausal3D): conv_in.conv, mid_block (as above),
//         up_blocks.{i}: resnets.{j}, upsamplers.0.conv.conv (run in index order),
//         conv_norm_out, conv_out.conv
//
// Every `.conv` wrapper is a CausalConv3d: replicate padding on all three axes (W and H by k//2
// on both sides, T by k-1 in front), then the Conv3d without padding. GroupNorm statistics span
// all frames of a sample, so the VAE is causal in its convolutions only.
//
// Activations are channels-last (1, T, H, W, C): the batch is coded one sample at a time (no op
// mixes samples, so this only bounds memory).
#include "models/hunyuan/hunyuan.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

#include "models/layers.hpp"
#include "ops/attention.hpp"
#include "ops/resample.hpp"
#include "vvae/error.hpp"
#include "vvae/limits.hpp"

namespace vvae {
namespace {

constexpr float kEps = 1e-6f;  // every GroupNorm upstream

// A (T, H, W) factor: a downsampler's stride or an upsampler's scale; {1, 1, 1} means none.
using Factors = std::array<int64_t, 3>;
constexpr Factors kNone = {1, 1, 1};

bool is_power_of_two(int64_t v) {
  return v >= 1 && (v & (v - 1)) == 0;
}

int64_t log2_of(int64_t v) {
  int64_t n = 0;
  while (v > 1) v >>= 1, ++n;
  return n;
}

struct HunyuanConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t latent_channels = 16;
  int64_t layers_per_block = 2;
  int64_t norm_num_groups = 32;
  double scale_factor = 0.476986;
  double shift_factor = 0.0;
  int64_t time_ratio = 4;
  int64_t spatial_ratio = 8;
  bool mid_block_add_attention = true;
  std::vector<int64_t> block_out_channels = {128, 256, 512, 512};
  int64_t sample_size = 256;
  int64_t sample_tsize = 64;
  bool use_spatial_tiling = false;  // AutoEncoder3DConfig's defaults
  bool use_temporal_tiling = false;
  double tile_overlap_factor = 0.25;
  // Upstream's placement rule, per block: encoder.down_blocks.{i}'s stride and
  // decoder.up_blocks.{i}'s upsample factor.
  std::vector<Factors> down, up;

  static HunyuanConfig parse(const Json& args) {
    ArgReader r(args, "hunyuan");
    HunyuanConfig c;
    const std::string act = r.get_string("act_fn", "silu");
    if (act != "silu" && act != "swish")
      fail("hunyuan model_args.act_fn = '", act,
           "' is not supported (vvae implements silu, alias swish, the released model's)");
    using namespace limits;
    c.in_channels = r.get_int("in_channels", c.in_channels, 1, kMaxChannels);
    c.out_channels = r.get_int("out_channels", c.out_channels, 1, kMaxChannels);
    c.latent_channels = r.get_int("latent_channels", c.latent_channels, 1, kMaxChannels);
    c.layers_per_block = r.get_int("layers_per_block", c.layers_per_block, 1, kMaxBlocksPerStage);
    c.norm_num_groups = r.get_int("norm_num_groups", c.norm_num_groups, 1, kMaxChannels);
    c.scale_factor = r.get_number("scale_factor", c.scale_factor);
    c.shift_factor = r.get_number("shift_factor", c.shift_factor);
    c.time_ratio = r.get_int("time_compression_ratio", c.time_ratio, 1, kMaxFrames);
    c.spatial_ratio = r.get_int("spatial_compression_ratio", c.spatial_ratio, 1, kMaxSide);
    c.mid_block_add_attention = r.get_bool("mid_block_add_attention", c.mid_block_add_attention);
    c.block_out_channels =
        r.get_int_list("block_out_channels", c.block_out_channels, 1, kMaxChannels, kMaxStages);
    c.sample_size = r.get_int("sample_size", c.sample_size, 1, kMaxSide);
    c.sample_tsize = r.get_int("sample_tsize", c.sample_tsize, 1, kMaxFrames);
    c.use_spatial_tiling = r.get_bool("use_spatial_tiling", c.use_spatial_tiling);
    c.use_temporal_tiling = r.get_bool("use_temporal_tiling", c.use_temporal_tiling);
    c.tile_overlap_factor = r.get_number("tile_overlap_factor", c.tile_overlap_factor);
    // Upstream codes the batch in slices of one sample when set; vvae always does (same math).
    r.get_bool("use_slicing", false);
    const double dropout = r.get_number("dropout", 0.0);  // the identity at inference
    if (dropout < 0.0 || dropout >= 1.0)
      fail("hunyuan model_args.dropout must be in [0, 1), got ", dropout);
    r.get_bool("channel", false);  // a config field upstream reads nowhere
    r.ignore("from_pretrained");   // the checkpoint path; vvae takes --weights
    r.ignore("device_map");        // factory arguments: where and in which dtype to run
    r.ignore("torch_dtype");
    r.finish();
    c.derive();
    return c;
  }

  int64_t blocks() const { return static_cast<int64_t>(block_out_channels.size()); }
  int64_t width(int64_t block) const { return block_out_channels[static_cast<size_t>(block)]; }
  int64_t top() const { return block_out_channels.back(); }
  // Upstream's tile_latent_min_size: the tile in latents, from the number of blocks.
  int64_t tile_latent_size() const { return sample_size >> (blocks() - 1); }

  // EncoderCausal3D / DecoderCausal3D: block i resamples spatially when i < log2(spatial ratio);
  // temporally (ratio 4) when it is one of the log2(4) blocks before the last, or (ratio 8) when
  // it also resamples spatially. The decoder uses the same rule on its reversed blocks, so its
  // first (lowest resolution) upsampler is spatial-only in the released model.
  void derive() {
    if (in_channels < 1 || out_channels < 1 || latent_channels < 1 || layers_per_block < 1 ||
        block_out_channels.empty())
      fail(
          "hunyuan model_args: channel counts, layers_per_block and block_out_channels must be "
          "positive");
    if (blocks() > 16)
      fail("hunyuan model_args.block_out_channels has ", blocks(),
           " blocks; at most 16 are supported");
    if (norm_num_groups < 1) fail("hunyuan model_args.norm_num_groups must be positive");
    for (int64_t w : block_out_channels)
      if (w < 1 || w % norm_num_groups != 0)
        fail(
            "hunyuan model_args: every block_out_channels entry must be a positive multiple of "
            "norm_num_groups (",
            norm_num_groups, "), got ", w);
    if (time_ratio != 4 && time_ratio != 8)
      fail(
          "hunyuan model_args.time_compression_ratio must be 4 or 8 (the ratios upstream "
          "implements), got ",
          time_ratio);
    if (!is_power_of_two(spatial_ratio))
      fail("hunyuan model_args.spatial_compression_ratio must be a power of two, got ",
           spatial_ratio);
    if (scale_factor == 0.0) fail("hunyuan model_args.scale_factor must not be 0");

    const int64_t n = blocks(), spatial = log2_of(spatial_ratio), temporal = log2_of(time_ratio);
    Factors total = kNone;
    for (int64_t i = 0; i < n; ++i) {
      const bool last = i == n - 1;
      const bool s = i < spatial;
      const bool t = time_ratio == 4 ? i >= n - 1 - temporal && !last : i < spatial;
      const Factors f = {t ? 2 : 1, s ? 2 : 1, s ? 2 : 1};
      down.push_back(f);
      up.push_back(f);
      for (size_t d = 0; d < 3; ++d) total[d] *= f[d];
    }
    if (total[0] != time_ratio || total[1] != spatial_ratio)
      fail("hunyuan model_args: with ", n, " blocks, upstream's placement rule compresses ",
           total[0], "x", total[1], "x", total[2], ", not the configured ", time_ratio, "x",
           spatial_ratio, "x", spatial_ratio, " (change block_out_channels or the ratios)");

    if (sample_size < 1 || sample_tsize < 1)
      fail("hunyuan model_args.sample_size and sample_tsize must be positive");
    if (!(tile_overlap_factor >= 0.0 && tile_overlap_factor < 1.0))
      fail("hunyuan model_args.tile_overlap_factor must be in [0, 1), got ", tile_overlap_factor);
    if (use_spatial_tiling && tile_latent_size() < 1)
      fail("hunyuan model_args.sample_size ", sample_size, " is smaller than one latent pixel (",
           int64_t{1} << (n - 1), " px)");
    if (use_temporal_tiling && sample_tsize < time_ratio)
      fail("hunyuan model_args.sample_tsize ", sample_tsize, " is shorter than one latent frame (",
           time_ratio, " frames)");
  }
};

// CausalConv3d: replicate padding (W, H: k//2 on both sides; T: k-1 in front), then Conv3d
// without padding. Weights at <scope>.conv.{weight, bias}.
class CausalConv3d {
 public:
  CausalConv3d() = default;
  CausalConv3d(const Scope& s, int64_t in, int64_t out, int64_t k, Factors stride = kNone)
      : k_(k), conv_(load_conv(s["conv"], in, out, {k, k, k}, geometry(stride))) {}

  bool defined() const { return conv_.defined(); }

  // (1, T, H, W, in) -> (1, (T-1)/sT + 1, (H-1)/sH + 1, (W-1)/sW + 1, out) for k = 3
  Tensor operator()(const Tensor& x) const { return k_ == 1 ? conv_(x) : conv_.padded(x, pad()); }
  // dst += conv(x)
  void accumulate(const Tensor& x, Tensor& dst) const {
    if (k_ == 1)
      conv_.accumulate(x, dst);
    else
      conv_.accumulate_padded(x, pad(), dst);
  }

 private:
  static ConvGeometry geometry(Factors stride) {
    ConvGeometry g = ConvGeometry::uniform(3, 1, 0);
    g.stride = stride;
    return g;
  }
  // Causal: k - 1 copies of the first frame in front, k / 2 edge copies around H and W (read
  // through the convolution's index maps where it can, else padded into a copy).
  PadSpec pad() const {
    return {{k_ - 1, k_ / 2, k_ / 2}, {0, k_ / 2, k_ / 2}, PadMode::kReplicate};
  }

  int64_t k_ = 1;
  Conv conv_;
};

// norm1 -> silu -> conv1 -> norm2 -> silu -> (dropout) -> conv2, added to x (through
// conv_shortcut, a 1x1x1 CausalConv3d, when the width changes); output_scale_factor is 1.
class ResnetBlockCausal3D {
 public:
  ResnetBlockCausal3D(const Scope& s, int64_t in, int64_t out, int64_t groups)
      : norm1_(GroupNorm::load(s["norm1"], in, groups, kEps)),
        conv1_(s["conv1"], in, out, 3),
        norm2_(GroupNorm::load(s["norm2"], out, groups, kEps)),
        conv2_(s["conv2"], out, out, 3) {
    if (in != out) conv_shortcut_ = CausalConv3d(s["conv_shortcut"], in, out, 1);
  }

  // (1, T, H, W, in) -> (1, T, H, W, out)
  Tensor operator()(Tensor x) const {
    Tensor h = conv1_(norm1_(x, Activation::kSilu));
    h = norm2_(h, Activation::kSilu);
    Tensor out = conv_shortcut_.defined() ? conv_shortcut_(x) : take_for_update(std::move(x));
    x = Tensor();
    conv2_.accumulate(std::move(h), out);
    return out;
  }

 private:
  GroupNorm norm1_;
  CausalConv3d conv1_;
  GroupNorm norm2_;
  CausalConv3d conv2_;
  CausalConv3d conv_shortcut_;
};

// diffusers Attention with one head of dim C over the T*H*W tokens of a sample (frame-major):
// GroupNorm, Linear to_q / to_k / to_v, softmax(q k^T / sqrt(C)) v under the frame-causal mask
// (a token sees every token of its own and earlier frames), Linear to_out.0, residual add.
class Attention {
 public:
  Attention(const Scope& s, int64_t c, int64_t groups)
      : group_norm_(GroupNorm::load(s["group_norm"], c, groups, kEps)),
        to_q_(load_linear(s["to_q"], c, c, 3)),
        to_k_(load_linear(s["to_k"], c, c, 3)),
        to_v_(load_linear(s["to_v"], c, c, 3)),
        to_out_(load_linear(s["to_out"][0], c, c, 3)) {}

  // (1, T, H, W, C) -> same
  Tensor operator()(Tensor x) const {
    const Shape shape = x.shape();
    const int64_t frame_tokens = shape[2] * shape[3];
    const Shape tokens = {shape[0], shape[1] * frame_tokens, shape[4]};
    Tensor h = group_norm_(x);
    const Tensor q = to_q_(h).reshape(tokens), k = to_k_(h).reshape(tokens),
                 v = to_v_(h).reshape(tokens);
    h = Tensor();
    const Tensor a =
        attention(q, k, v, 1.0f / std::sqrt(static_cast<float>(shape[4])), frame_tokens);
    Tensor out = take_for_update(std::move(x));
    to_out_.accumulate(a.reshape(shape), out);
    return out;
  }

 private:
  GroupNorm group_norm_;
  Conv to_q_, to_k_, to_v_, to_out_;
};

// UNetMidBlockCausal3D: resnets.0 -> attentions.0 (unless mid_block_add_attention is false) ->
// resnets.1.
class UNetMidBlockCausal3D {
 public:
  UNetMidBlockCausal3D(const Scope& s, int64_t c, int64_t groups, bool add_attention) {
    // attentions before resnets: the order of upstream's state_dict
    if (add_attention) attention_.emplace(s["attentions"][0], c, groups);
    resnets_.emplace_back(s["resnets"][0], c, c, groups);
    resnets_.emplace_back(s["resnets"][1], c, c, groups);
  }

  Tensor operator()(Tensor x) const {
    x = resnets_[0](std::move(x));
    if (attention_) x = (*attention_)(std::move(x));
    return resnets_[1](std::move(x));
  }

 private:
  std::optional<Attention> attention_;
  std::vector<ResnetBlockCausal3D> resnets_;
};

// DownsampleCausal3D: a k3 CausalConv3d with the block's stride ((1, 2, 2) or (2, 2, 2) in the
// released model).
class DownsampleCausal3D {
 public:
  DownsampleCausal3D(const Scope& s, int64_t c, Factors stride)
      : conv_(s["conv"], c, c, 3, stride) {}
  // (1, T, H, W, C) -> (1, (T-1)/sT + 1, (H-1)/sH + 1, (W-1)/sW + 1, C)
  Tensor operator()(Tensor x) const { return conv_(std::move(x)); }

 private:
  CausalConv3d conv_;
};

// UpsampleCausal3D: nearest upsampling where frame 0 is scaled in H, W only and frames 1.. in
// T, H, W (concatenated), then a k3 CausalConv3d. Run fused (UpsampleConv): the upsampled tensor
// is never built.
class UpsampleCausal3D {
 public:
  UpsampleCausal3D(const Scope& s, int64_t c, Factors factor)
      : temporal_(factor[0] == 2),
        conv_(load_upsample_conv(s["conv"]["conv"], c, c, 3,
                                 {factor[0] == 2, factor[1] == 2, factor[2] == 2})) {}

  // (1, T, H, W, C) -> (1, 1 + fT (T-1), fH H, fW W, C)
  Tensor operator()(Tensor x) const {
    if (x.dim(0) != 1) fail("UpsampleCausal3D runs on one sample at a time");
    // The replicate padding of the upsampled tensor maps onto the low-resolution one: one pixel
    // on both sides of H and W. In time, the causally upsampled frames [x0, x1, x1, x2, x2, ...]
    // behind two copies of x0 are the plainly upsampled [x0, x0, x1, x1, ...] behind one: so
    // the result is UpsampleConv's "same" convolution of the plain upsampling (one replicated
    // frame on both sides) without its last output frame. Without temporal upsampling, T is
    // padded causally by k-1 = 2 frames in front.
    const int64_t t_lo = temporal_ ? 1 : 2, t_hi = temporal_ ? 1 : 0;
    Tensor y = conv_.padded(x, {{t_lo, 1, 1}, {t_hi, 1, 1}, PadMode::kReplicate});
    x = Tensor();
    if (!temporal_) return y;
    const Shape s = y.shape();  // (1, 2T, H', W', C): keep the first 2T - 1 frames, in place
    return y.reshape({s[1], s[2], s[3], s[4]})
        .slice0(0, s[1] - 1)
        .reshape({1, s[1] - 1, s[2], s[3], s[4]});
  }

 private:
  bool temporal_;
  UpsampleConv conv_;
};

class EncoderCausal3D {
 public:
  EncoderCausal3D(const Scope& s, const HunyuanConfig& c)
      : conv_in_(s["conv_in"], c.in_channels, c.width(0), 3) {
    int64_t in = c.width(0);
    for (int64_t i = 0; i < c.blocks(); ++i) {
      const Scope block = s["down_blocks"][i];
      DownBlock b;
      for (int64_t j = 0; j < c.layers_per_block; ++j, in = c.width(i))
        b.resnets.emplace_back(block["resnets"][j], in, c.width(i), c.norm_num_groups);
      const Factors stride = c.down[static_cast<size_t>(i)];
      if (stride != kNone) b.downsampler.emplace(block["downsamplers"][0], c.width(i), stride);
      down_blocks_.push_back(std::move(b));
    }
    mid_block_.emplace(s["mid_block"], c.top(), c.norm_num_groups, c.mid_block_add_attention);
    conv_norm_out_ = GroupNorm::load(s["conv_norm_out"], c.top(), c.norm_num_groups, kEps);
    conv_out_ = CausalConv3d(s["conv_out"], c.top(), 2 * c.latent_channels, 3);
  }

  // (1, T, H, W, in_channels) -> (1, T', H/f, W/f, 2 * latent_channels)
  Tensor operator()(Tensor x) const {
    Tensor h = conv_in_(std::move(x));
    for (const DownBlock& block : down_blocks_) {
      for (const ResnetBlockCausal3D& resnet : block.resnets) h = resnet(std::move(h));
      if (block.downsampler) h = (*block.downsampler)(std::move(h));
    }
    h = (*mid_block_)(std::move(h));
    h = conv_norm_out_(h, Activation::kSilu);
    return conv_out_(std::move(h));
  }

 private:
  struct DownBlock {
    std::vector<ResnetBlockCausal3D> resnets;
    std::optional<DownsampleCausal3D> downsampler;  // downsamplers.0
  };
  CausalConv3d conv_in_;
  std::vector<DownBlock> down_blocks_;
  std::optional<UNetMidBlockCausal3D> mid_block_;
  GroupNorm conv_norm_out_;
  CausalConv3d conv_out_;
};

class DecoderCausal3D {
 public:
  DecoderCausal3D(const Scope& s, const HunyuanConfig& c)
      : conv_in_(s["conv_in"], c.latent_channels, c.top(), 3) {
    mid_block_.emplace(s["mid_block"], c.top(), c.norm_num_groups, c.mid_block_add_attention);
    // Block i runs at width block_out_channels[n-1-i]; its first resnet takes the previous width.
    int64_t in = c.top();
    for (int64_t i = 0; i < c.blocks(); ++i) {
      const Scope block = s["up_blocks"][i];
      const int64_t width = c.width(c.blocks() - 1 - i);
      UpBlock b;
      for (int64_t j = 0; j <= c.layers_per_block; ++j, in = width)
        b.resnets.emplace_back(block["resnets"][j], in, width, c.norm_num_groups);
      const Factors factor = c.up[static_cast<size_t>(i)];
      if (factor != kNone) b.upsampler.emplace(block["upsamplers"][0], width, factor);
      up_blocks_.push_back(std::move(b));
    }
    conv_norm_out_ = GroupNorm::load(s["conv_norm_out"], c.width(0), c.norm_num_groups, kEps);
    conv_out_ = CausalConv3d(s["conv_out"], c.width(0), c.out_channels, 3);
  }

  // (1, t, h, w, latent_channels) -> (1, 1 + r (t-1), h*f, w*f, out_channels)
  Tensor operator()(Tensor z) const {
    Tensor h = (*mid_block_)(conv_in_(std::move(z)));
    for (const UpBlock& block : up_blocks_) {
      for (const ResnetBlockCausal3D& resnet : block.resnets) h = resnet(std::move(h));
      if (block.upsampler) h = (*block.upsampler)(std::move(h));
    }
    h = conv_norm_out_(h, Activation::kSilu);
    return conv_out_(std::move(h));
  }

 private:
  struct UpBlock {
    std::vector<ResnetBlockCausal3D> resnets;
    std::optional<UpsampleCausal3D> upsampler;  // upsamplers.0
  };
  CausalConv3d conv_in_;
  std::optional<UNetMidBlockCausal3D> mid_block_;
  std::vector<UpBlock> up_blocks_;
  GroupNorm conv_norm_out_;
  CausalConv3d conv_out_;
};

Conv plain_conv1x1x1(const Scope& s, int64_t channels) {
  return load_conv(s, channels, channels, {1, 1, 1}, ConvGeometry::uniform(3, 1, 0));
}

// Upstream's tile sizes: tile_sample_min_size / tile_latent_min_size in H and W,
// tile_sample_min_tsize / tile_latent_min_tsize in T; tiles are causal in time.
TilingPair hunyuan_tiling(const HunyuanConfig& c) {
  return tiling_pair({.spatial = c.use_spatial_tiling,
                      .temporal = c.use_temporal_tiling,
                      .overlap = c.tile_overlap_factor,
                      .tile = c.sample_size,
                      .latent_tile = c.tile_latent_size(),
                      .tile_frames = c.sample_tsize,
                      .latent_frames = c.sample_tsize / c.time_ratio,
                      .causal = true});
}

// AutoencoderKLCausal3D: quant_conv(encoder(x)) -> moments, the posterior and scale/shift (the
// codec base, after the tiles' moments are blended), decoder(post_quant_conv(z)).
class AutoencoderKLCausal3D : public Codec {
 public:
  AutoencoderKLCausal3D(const HunyuanConfig& c, WeightStore& weights)
      : Codec({.family = "hunyuan",
               .in_channels = c.in_channels,
               .latent_channels = c.latent_channels,
               .out_channels = c.out_channels,
               .time_ratio = c.time_ratio,
               .causal_time = true,
               .spatial_ratio = c.spatial_ratio,
               .latent = LatentSpec::gaussian(c.scale_factor, c.shift_factor),
               .encode_tiling = hunyuan_tiling(c).encode,
               .decode_tiling = hunyuan_tiling(c).decode}),
        config_(c),
        encoder_(Scope(weights)["encoder"], c),
        decoder_(Scope(weights)["decoder"], c),
        quant_conv_(plain_conv1x1x1(Scope(weights)["quant_conv"], 2 * c.latent_channels)),
        post_quant_conv_(plain_conv1x1x1(Scope(weights)["post_quant_conv"], c.latent_channels)) {}

 protected:
  // quant_conv(encoder(x)): (1, T, H, W, in) -> (1, T', H', W', 2 * latent)
  Tensor encode_unit(const Tensor& x) const override { return quant_conv_(encoder_(x)); }
  // decoder(post_quant_conv(z)), z unscaled: (1, t, h, w, latent) -> (1, T, H, W, out)
  Tensor decode_unit(const Tensor& z) const override { return decoder_(post_quant_conv_(z)); }

  // quant_conv(encoder(x))'s shape for any input size, as upstream computes it: a k3 causal
  // convolution of stride 2 maps n to (n - 1) / 2 + 1 along its axis. Tiles are held to this
  // rule only, so that misaligned tile settings show up as the wrong output size upstream would
  // silently give (the tiler refuses them, saying so).
  Shape encoder_shape(const Shape& x) const override {
    check_clip_shape(x, config_.in_channels, "input");
    Shape m = {x[0], 2 * config_.latent_channels, x[2], x[3], x[4]};
    for (const Factors& stride : config_.down)
      for (size_t d = 0; d < 3; ++d) m[2 + d] = (m[2 + d] - 1) / stride[d] + 1;
    return m;
  }

  // The decoder's shape: an upsampler scales n frames to 1 + f (n - 1), H and W by f.
  Shape decoder_shape(const Shape& z) const override {
    check_clip_shape(z, config_.latent_channels, "latent");
    Shape x = {z[0], config_.out_channels, z[2], z[3], z[4]};
    for (const Factors& f : config_.up) {
      x[2] = 1 + f[0] * (x[2] - 1);
      x[3] *= f[1];
      x[4] *= f[2];
    }
    return x;
  }

 private:
  HunyuanConfig config_;
  EncoderCausal3D encoder_;
  DecoderCausal3D decoder_;
  Conv quant_conv_;
  Conv post_quant_conv_;
};

// diffusers' AutoencoderKLHunyuanVideo config -> model_args; its checkpoint keys are upstream's.
// The tiling is diffusers' default: spatial tiling off (256 px tiles at a stride of 192 once
// enable_tiling() turns it on) and "framewise" coding on, which tiles clips longer than 16
// frames in time at a stride of 12 (latent tiles of 4 frames at a stride of 3) -- Open-Sora's
// scheme with these sizes at overlap 0.25, so the numbers are diffusers'.
Json hunyuan_from_diffusers(const Json& c) {
  ArgReader r(c, "diffusers", "AutoencoderKLHunyuanVideo config");
  for (const auto& item : c.items())
    if (!item.key().empty() && item.key()[0] == '_') r.ignore(item.key());  // _class_name, ...
  using namespace limits;
  // The defaults are AutoencoderKLHunyuanVideo.__init__'s.
  const std::vector<int64_t> widths =
      r.get_int_list("block_out_channels", {128, 256, 512, 512}, 1, kMaxChannels, kMaxStages);
  const auto check_blocks = [&](const char* key, const char* type) {
    const auto blocks = r.get_string_list(key, std::vector<std::string>(widths.size(), type));
    if (blocks.size() != widths.size() ||
        std::any_of(blocks.begin(), blocks.end(), [&](const auto& b) { return b != type; }))
      fail("diffusers AutoencoderKLHunyuanVideo config.", key, " must be ", widths.size(), " x \"",
           type, "\" (one per block_out_channels entry)");
  };
  check_blocks("down_block_types", "HunyuanVideoDownBlock3D");
  check_blocks("up_block_types", "HunyuanVideoUpBlock3D");
  Json args{{"act_fn", r.get_string("act_fn", "silu")},
            {"in_channels", r.get_int("in_channels", 3, 1, kMaxChannels)},
            {"out_channels", r.get_int("out_channels", 3, 1, kMaxChannels)},
            {"latent_channels", r.get_int("latent_channels", 16, 1, kMaxChannels)},
            {"layers_per_block", r.get_int("layers_per_block", 2, 1, kMaxBlocksPerStage)},
            {"norm_num_groups", r.get_int("norm_num_groups", 32, 1, kMaxChannels)},
            {"scale_factor", r.get_number("scaling_factor", 0.476986)},
            {"shift_factor", 0.0},
            {"time_compression_ratio", r.get_int("temporal_compression_ratio", 4, 1, kMaxFrames)},
            {"spatial_compression_ratio", r.get_int("spatial_compression_ratio", 8, 1, kMaxSide)},
            {"mid_block_add_attention", r.get_bool("mid_block_add_attention", true)},
            {"block_out_channels", widths},
            {"sample_size", 256},
            {"sample_tsize", 16},
            {"use_spatial_tiling", false},
            {"use_temporal_tiling", true},
            {"tile_overlap_factor", 0.25}};
  r.finish();
  return args;
}

std::unique_ptr<Codec> build_hunyuan(const Json& args, WeightStore& weights) {
  return std::make_unique<AutoencoderKLCausal3D>(HunyuanConfig::parse(args), weights);
}

TilingPair tiling_of_hunyuan(const Json& args) {
  return hunyuan_tiling(HunyuanConfig::parse(args));
}

}  // namespace

Family hunyuan_family() {
  return {
      .name = "hunyuan",
      .aliases = {"hunyuan_vae", "AutoencoderKLCausal3D", "CausalVAE3D_HUNYUAN"},
      .strict_loading = true,  // upstream loads the checkpoint with strict=True
      .build = build_hunyuan,
      .diffusers_class = "AutoencoderKLHunyuanVideo",
      .from_diffusers = hunyuan_from_diffusers,
      .tiling_keys = TilingKeys{"use_spatial_tiling", "use_temporal_tiling", "sample_size",
                                "sample_tsize", "tile_overlap_factor"},
      .tiling = tiling_of_hunyuan,
      .presets = {
          {"hunyuan-vae", "hunyuan",
           "HunyuanVideo causal 3D VAE (Open-Sora 2.0): 4x8x8, 16 latent channels, tiled 256 px "
           "/ 64 frames (hunyuan_vae.safetensors)",
           Json{{"act_fn", "silu"},
                {"in_channels", 3},
                {"out_channels", 3},
                {"latent_channels", 16},
                {"layers_per_block", 2},
                {"norm_num_groups", 32},
                {"scale_factor", 0.476986},
                {"shift_factor", 0.0},
                {"time_compression_ratio", 4},
                {"spatial_compression_ratio", 8},
                {"mid_block_add_attention", true},
                {"block_out_channels", {128, 256, 512, 512}},
                {"sample_size", 256},
                {"sample_tsize", 64},
                {"use_spatial_tiling", true},
                {"use_temporal_tiling", true},
                {"tile_overlap_factor", 0.25}}}}};
}

}  // namespace vvae
