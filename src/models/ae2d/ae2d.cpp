// Module tree (upstream names; a weight key reads as a path through it):
//
//   AutoEncoder
//   ├── encoder: conv_in, down.{i}.block.{j} (ResnetBlock), down.{i}.downsample.conv,
//   │            mid.{block_1, attn_1, block_2}, norm_out, conv_out   -> moments (2 * z_channels)
//   └── decoder: conv_in, mid.{block_1, attn_1, block_2},
//                up.{i}.block.{j}, up.{i}.upsample.conv (run from the highest i down),
//                norm_out, conv_out
//
// Every frame is encoded and decoded on its own ("b c t h w -> (b t) c h w" upstream), one at a
// time, so memory does not grow with the clip's length.
#include "models/ae2d/ae2d.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <sstream>

#include "models/layers.hpp"
#include "ops/attention.hpp"
#include "ops/resample.hpp"
#include "vvae/error.hpp"
#include "vvae/limits.hpp"

namespace vvae {
namespace {

constexpr int64_t kGroups = 32;  // hard-coded upstream
constexpr float kEps = 1e-6f;

struct Ae2dConfig {
  int64_t resolution = 256;
  int64_t in_channels = 3;
  int64_t ch = 128;
  int64_t out_ch = 3;
  std::vector<int64_t> ch_mult = {1, 2, 4, 4};
  int64_t num_res_blocks = 2;
  int64_t z_channels = 16;
  double scale_factor = 0.3611;
  double shift_factor = 0.1159;
  // vvae's spatial tiles (upstream's 2D AE codes whole frames): off unless a memory cap or
  // --tile-size asks for them; HunyuanVideo's scheme (blended overlaps) inside each frame.
  bool vvae_spatial_tiling = false;
  int64_t vvae_tile_size = 256;  // pixels
  double vvae_tile_overlap = 0.25;

  static Ae2dConfig parse(const Json& args) {
    ArgReader r(args, "ae2d");
    Ae2dConfig c;
    using namespace limits;
    c.resolution = r.get_int("resolution", c.resolution, 1, kMaxSide);
    c.in_channels = r.get_int("in_channels", c.in_channels, 1, kMaxChannels);
    c.ch = r.get_int("ch", c.ch, 1, kMaxChannels);
    c.out_ch = r.get_int("out_ch", c.out_ch, 1, kMaxChannels);
    c.ch_mult = r.get_int_list("ch_mult", c.ch_mult, 1, kMaxChannels, kMaxStages);
    c.num_res_blocks = r.get_int("num_res_blocks", c.num_res_blocks, 1, kMaxBlocksPerStage);
    c.z_channels = r.get_int("z_channels", c.z_channels, 1, kMaxChannels);
    c.scale_factor = r.get_number("scale_factor", c.scale_factor);
    c.shift_factor = r.get_number("shift_factor", c.shift_factor);
    r.get_bool("sample", true);  // vvae takes the mode unless `--sample` asks for a draw
    c.vvae_spatial_tiling = r.get_bool("vvae_spatial_tiling", c.vvae_spatial_tiling);
    c.vvae_tile_size = r.get_int("vvae_tile_size", c.vvae_tile_size, 1, kMaxSide);
    c.vvae_tile_overlap = r.get_number("vvae_tile_overlap", c.vvae_tile_overlap);
    r.ignore("from_pretrained");
    r.ignore("cache_dir");
    r.finish();
    c.validate();
    return c;
  }

  void validate() const {
    if (in_channels < 1 || out_ch < 1 || z_channels < 1 || num_res_blocks < 1 || ch_mult.empty())
      fail("ae2d model_args: channel counts, num_res_blocks and ch_mult must be positive");
    for (int64_t m : ch_mult) {
      if (ch * m > limits::kMaxChannels)
        fail("ae2d model_args: ch * ch_mult = ", ch, " x ", m, " is above vvae's limit of ",
             limits::kMaxChannels, " channels");
      if (m < 1 || (ch * m) % kGroups != 0)
        fail(
            "ae2d model_args: every ch * ch_mult must be a positive multiple of 32 (GroupNorm(32)),"
            " got ch ",
            ch, " x ", m);
    }
    if (scale_factor == 0.0) fail("ae2d model_args.scale_factor must not be 0");
    if (vvae_tile_size % spatial_ratio() != 0)
      fail("ae2d model_args.vvae_tile_size (--tile-size) must be a multiple of ", spatial_ratio(),
           " pixels, got ", vvae_tile_size);
    if (!(vvae_tile_overlap >= 0.0 && vvae_tile_overlap < 1.0))
      fail("ae2d model_args.vvae_tile_overlap must be in [0, 1), got ", vvae_tile_overlap);
  }

  int64_t levels() const { return static_cast<int64_t>(ch_mult.size()); }
  int64_t spatial_ratio() const { return int64_t{1} << (levels() - 1); }
  int64_t width(int64_t level) const { return ch * ch_mult[static_cast<size_t>(level)]; }
};

TilingPair ae2d_tiling(const Ae2dConfig& c) {
  return tiling_pair({.spatial = c.vvae_spatial_tiling,
                      .overlap = c.vvae_tile_overlap,
                      .tile = c.vvae_tile_size,
                      .latent_tile = c.vvae_tile_size / c.spatial_ratio()});
}

Conv conv3x3(const Scope& s, int64_t in, int64_t out) {
  return load_conv(s, in, out, {3, 3}, ConvGeometry::uniform(2, 1, 1));
}

Conv conv1x1(const Scope& s, int64_t in, int64_t out) {
  return load_conv(s, in, out, {1, 1}, ConvGeometry::uniform(2, 1, 0));
}

// norm1 -> silu -> conv1 -> norm2 -> silu -> conv2, added to x (through nin_shortcut, a 1x1
// conv, when the width changes).
class ResnetBlock {
 public:
  ResnetBlock(const Scope& s, int64_t in, int64_t out)
      : norm1_(GroupNorm::load(s["norm1"], in, kGroups, kEps)),
        conv1_(conv3x3(s["conv1"], in, out)),
        norm2_(GroupNorm::load(s["norm2"], out, kGroups, kEps)),
        conv2_(conv3x3(s["conv2"], out, out)) {
    if (in != out) nin_shortcut_ = conv1x1(s["nin_shortcut"], in, out);
  }

  // (N, H, W, in) -> (N, H, W, out)
  Tensor operator()(Tensor x) const {
    Tensor h = norm2_(conv1_(norm1_(x, Activation::kSilu)), Activation::kSilu);
    Tensor out = nin_shortcut_.defined() ? nin_shortcut_(x) : take_for_update(std::move(x));
    conv2_.accumulate(h, out);
    return out;
  }

 private:
  GroupNorm norm1_;
  Conv conv1_;
  GroupNorm norm2_;
  Conv conv2_;
  Conv nin_shortcut_;
};

// Single-head self-attention over the H*W tokens of a frame; q, k, v, proj_out are 1x1 convs.
class AttnBlock {
 public:
  AttnBlock(const Scope& s, int64_t c)
      : norm_(GroupNorm::load(s["norm"], c, kGroups, kEps)),
        q_(conv1x1(s["q"], c, c)),
        k_(conv1x1(s["k"], c, c)),
        v_(conv1x1(s["v"], c, c)),
        proj_out_(conv1x1(s["proj_out"], c, c)) {}

  Tensor operator()(Tensor x) const {
    const Shape shape = x.shape();  // (N, H, W, C)
    const Shape tokens = {shape[0], shape[1] * shape[2], shape[3]};
    Tensor h = norm_(x);
    Tensor a = attention(q_(h).reshape(tokens), k_(h).reshape(tokens), v_(h).reshape(tokens),
                         1.0f / std::sqrt(static_cast<float>(shape[3])));
    Tensor out = take_for_update(std::move(x));
    proj_out_.accumulate(a.reshape(shape), out);
    return out;
  }

 private:
  GroupNorm norm_;
  Conv q_, k_, v_, proj_out_;
};

struct MidBlock {
  MidBlock(const Scope& s, int64_t c)
      : block_1(s["block_1"], c, c), attn_1(s["attn_1"], c), block_2(s["block_2"], c, c) {}
  Tensor operator()(Tensor x) const { return block_2(attn_1(block_1(std::move(x)))); }

  ResnetBlock block_1;
  AttnBlock attn_1;
  ResnetBlock block_2;
};

// Zero pad (0, 1, 0, 1) -- right and bottom only -- then a 3x3 stride-2 conv: the padding is
// the convolution's own asymmetric padding.
Conv downsample_conv(const Scope& s, int64_t c) {
  ConvGeometry g = ConvGeometry::uniform(2, 2, 0);
  g.pad_hi = {1, 1, 0};
  return load_conv(s["conv"], c, c, {3, 3}, g);
}

class Encoder {
 public:
  Encoder(const Scope& s, const Ae2dConfig& c)
      : conv_in_(conv3x3(s["conv_in"], c.in_channels, c.ch)) {
    for (int64_t i = 0; i < c.levels(); ++i) {
      const Scope level = s["down"][i];
      Level l;
      int64_t in = i == 0 ? c.ch : c.width(i - 1);
      for (int64_t j = 0; j < c.num_res_blocks; ++j, in = c.width(i))
        l.block.emplace_back(level["block"][j], in, c.width(i));
      if (i != c.levels() - 1) l.downsample = downsample_conv(level["downsample"], c.width(i));
      down_.push_back(std::move(l));
    }
    const int64_t top = c.width(c.levels() - 1);
    mid_.emplace(s["mid"], top);
    norm_out_ = GroupNorm::load(s["norm_out"], top, kGroups, kEps);
    conv_out_ = conv3x3(s["conv_out"], top, 2 * c.z_channels);
  }

  // (1, H, W, in_channels) -> (1, H/f, W/f, 2 * z_channels)
  Tensor operator()(const Tensor& x) const {
    Tensor h = conv_in_(x);
    for (const Level& level : down_) {
      for (const ResnetBlock& block : level.block) h = block(std::move(h));
      if (level.downsample.defined()) h = level.downsample(h);
    }
    h = (*mid_)(std::move(h));
    return conv_out_(norm_out_(h, Activation::kSilu));
  }

 private:
  struct Level {
    std::vector<ResnetBlock> block;
    Conv downsample;
  };
  Conv conv_in_;
  std::vector<Level> down_;
  std::optional<MidBlock> mid_;
  GroupNorm norm_out_;
  Conv conv_out_;
};

class Decoder {
 public:
  Decoder(const Scope& s, const Ae2dConfig& c) {
    const int64_t top = c.width(c.levels() - 1);
    conv_in_ = conv3x3(s["conv_in"], c.z_channels, top);
    mid_.emplace(s["mid"], top);
    // Built in checkpoint order (up.0 first); level i's first block takes level i+1's width.
    for (int64_t i = 0; i < c.levels(); ++i) {
      const Scope level = s["up"][i];
      Level l;
      int64_t in = i == c.levels() - 1 ? top : c.width(i + 1);
      for (int64_t j = 0; j <= c.num_res_blocks; ++j, in = c.width(i))
        l.block.emplace_back(level["block"][j], in, c.width(i));
      if (i != 0)
        l.upsample = load_upsample_conv(level["upsample"]["conv"], c.width(i), c.width(i), 2,
                                        {true, true, false});
      up_.push_back(std::move(l));
    }
    norm_out_ = GroupNorm::load(s["norm_out"], c.width(0), kGroups, kEps);
    conv_out_ = conv3x3(s["conv_out"], c.width(0), c.out_ch);
  }

  // (1, h, w, z_channels) -> (1, h*f, w*f, out_ch)
  Tensor operator()(const Tensor& z) const {
    Tensor h = (*mid_)(conv_in_(z));
    for (auto level = up_.rbegin(); level != up_.rend(); ++level) {
      for (const ResnetBlock& block : level->block) h = block(std::move(h));
      // Upsample: nearest x2 then a 3x3 conv with zero padding, fused (see UpsampleConv).
      if (level->upsample.defined())
        h = level->upsample.padded(h, {{1, 1}, {1, 1}, PadMode::kZeros});
    }
    return conv_out_(norm_out_(h, Activation::kSilu));
  }

 private:
  struct Level {
    std::vector<ResnetBlock> block;
    UpsampleConv upsample;  // upsample.conv, after nearest x2
  };
  Conv conv_in_;
  std::optional<MidBlock> mid_;
  std::vector<Level> up_;
  GroupNorm norm_out_;
  Conv conv_out_;
};

// AutoEncoder: encoder -> moments, the posterior and scale/shift (the codec base), decoder. Every
// frame is coded on its own ("b c t h w -> (b t) c h w" upstream).
class AutoEncoder2D : public Codec {
 public:
  AutoEncoder2D(const Ae2dConfig& c, WeightStore& weights)
      : Codec({.family = "ae2d",
               .in_channels = c.in_channels,
               .latent_channels = c.z_channels,
               .out_channels = c.out_ch,
               .spatial_ratio = c.spatial_ratio(),
               .unit = CodecSpec::Unit::kFrame,
               .latent = LatentSpec::gaussian(c.scale_factor, c.shift_factor),
               .encode_tiling = ae2d_tiling(c).encode,
               .decode_tiling = ae2d_tiling(c).decode}),
        config_(c),
        encoder_(Scope(weights)["encoder"], c),
        decoder_(Scope(weights)["decoder"], c) {}

 protected:
  // (1, H, W, in_channels) -> (1, H/f, W/f, 2 * z_channels)
  Tensor encode_unit(const Tensor& frame) const override { return encoder_(frame); }
  // (1, h, w, z_channels) -> (1, h*f, w*f, out_ch)
  Tensor decode_unit(const Tensor& frame) const override { return decoder_(frame); }

  Shape encoder_shape(const Shape& x) const override {
    const int64_t f = config_.spatial_ratio();
    return {x[0], 2 * config_.z_channels, x[2], x[3] / f, x[4] / f};
  }
  Shape decoder_shape(const Shape& z) const override {
    const int64_t f = config_.spatial_ratio();
    return {z[0], config_.out_ch, z[2], z[3] * f, z[4] * f};
  }

 private:
  Ae2dConfig config_;
  Encoder encoder_;
  Decoder decoder_;
};

// --- diffusers naming (AutoencoderKL) -------------------------------------------------------

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, '.');) parts.push_back(part);
  return parts;
}

std::string join(const std::vector<std::string>& parts, size_t from) {
  std::string out;
  for (size_t i = from; i < parts.size(); ++i) out += (out.empty() ? "" : ".") + parts[i];
  return out;
}

// Upstream name of one diffusers key, or "" when the key has no counterpart.
std::string from_diffusers(const std::string& key, int64_t levels) {
  static const std::map<std::string, std::string> leaf = {{"conv_shortcut", "nin_shortcut"},
                                                          {"group_norm", "norm"},
                                                          {"to_q", "q"},
                                                          {"to_k", "k"},
                                                          {"to_v", "v"},
                                                          {"query", "q"},
                                                          {"key", "k"},
                                                          {"value", "v"},
                                                          {"proj_attn", "proj_out"},
                                                          {"conv_norm_out", "norm_out"}};
  auto p = split(key);
  if (p.size() < 3 || (p[0] != "encoder" && p[0] != "decoder")) return "";
  auto rename_leaf = [&](size_t i) {
    if (auto it = leaf.find(p[i]); it != leaf.end()) p[i] = it->second;
  };
  std::string head;
  size_t rest = 0;
  if ((p[1] == "down_blocks" || p[1] == "up_blocks") && p.size() >= 5) {
    const bool up = p[1] == "up_blocks";
    const int64_t i = std::stoll(p[2]);
    const std::string level = up ? std::to_string(levels - 1 - i) : p[2];
    if (p[3] == "resnets") {
      rename_leaf(5);
      head = p[0] + (up ? ".up." : ".down.") + level + ".block." + p[4];
      rest = 5;
    } else if (p[3] == "downsamplers" || p[3] == "upsamplers") {
      head = p[0] + (up ? ".up." : ".down.") + level + (up ? ".upsample" : ".downsample");
      rest = 5;
    } else {
      return "";
    }
  } else if (p[1] == "mid_block" && p.size() >= 5) {
    if (p[2] == "resnets") {
      head = p[0] + ".mid.block_" + std::to_string(std::stoll(p[3]) + 1);
      rest = 4;
      rename_leaf(4);
    } else if (p[2] == "attentions") {
      head = p[0] + ".mid.attn_1";
      if (p[4] == "to_out" && p.size() >= 6) p.erase(p.begin() + 5);  // to_out.0 -> proj_out
      if (p[4] == "to_out") p[4] = "proj_out";
      rename_leaf(4);
      rest = 4;
    } else {
      return "";
    }
  } else {
    rename_leaf(1);
    head = p[0];
    rest = 1;
  }
  return head + "." + join(p, rest);
}

std::map<std::string, std::string> diffusers_renames(const std::vector<std::string>& keys) {
  std::map<std::string, std::string> renames;
  int64_t levels = 0;
  for (const auto& key : keys) {
    const auto p = split(key);
    if (p.size() > 2 && p[0] == "decoder" && p[1] == "up_blocks")
      levels = std::max<int64_t>(levels, std::stoll(p[2]) + 1);
  }
  bool diffusers = false;
  for (const auto& key : keys)
    if (key.rfind("encoder.down_blocks.", 0) == 0 || key.rfind("decoder.up_blocks.", 0) == 0)
      diffusers = true;
  if (!diffusers) return renames;
  for (const auto& key : keys) {
    // Digits-only parts are guaranteed by the key format; a malformed key is left unmapped.
    try {
      const std::string name = from_diffusers(key, levels);
      if (!name.empty()) renames[name] = key;
    } catch (const std::exception&) {
    }
  }
  return renames;
}

// diffusers' AutoencoderKL config (the Flux AE as diffusers ships it) -> model_args. Only the
// Flux AE's architecture is implemented: GroupNorm(32), SiLU, a mid-block attention and no
// quant_conv / post_quant_conv (diffusers' defaults build both, as in Stable Diffusion's VAE).
Json ae2d_from_diffusers(const Json& c) {
  ArgReader r(c, "diffusers", "AutoencoderKL config");
  for (const auto& item : c.items())
    if (!item.key().empty() && item.key()[0] == '_') r.ignore(item.key());  // _class_name, ...
  using namespace limits;
  // The defaults are AutoencoderKL.__init__'s (save_pretrained writes every key anyway).
  const std::vector<int64_t> widths =
      r.get_int_list("block_out_channels", {64}, 1, kMaxChannels, kMaxStages);
  const auto check_blocks = [&](const char* key, const char* type) {
    const auto blocks = r.get_string_list(key, {type});
    if (blocks.size() != widths.size() ||
        std::any_of(blocks.begin(), blocks.end(), [&](const auto& b) { return b != type; }))
      fail("diffusers AutoencoderKL config.", key, " must be ", widths.size(), " x \"", type,
           "\" (one per block_out_channels entry): vvae implements the Flux AE's blocks only");
  };
  check_blocks("down_block_types", "DownEncoderBlock2D");
  check_blocks("up_block_types", "UpDecoderBlock2D");
  r.require("act_fn", "silu", "vvae's 2D AE is the Flux AE, which uses SiLU");
  r.require("norm_num_groups", 32, "vvae's 2D AE is the Flux AE, whose GroupNorms have 32 groups");
  if (r.get_bool("use_quant_conv", true) || r.get_bool("use_post_quant_conv", true))
    fail(
        "diffusers AutoencoderKL config: use_quant_conv and use_post_quant_conv must be false "
        "(vvae's 2D AE is the Flux AE, which has neither; Stable Diffusion's VAE is not "
        "implemented)");
  if (!r.get_bool("mid_block_add_attention", true))
    fail("diffusers AutoencoderKL config.mid_block_add_attention must be true (the Flux AE's)");
  const int64_t in_channels = r.get_int("in_channels", 3, 1, kMaxChannels);
  const int64_t out_channels = r.get_int("out_channels", 3, 1, kMaxChannels);
  const int64_t layers = r.get_int("layers_per_block", 1, 1, kMaxBlocksPerStage);
  const int64_t latent = r.get_int("latent_channels", 4, 1, kMaxChannels);
  const double scale = r.get_number("scaling_factor", 0.18215);
  const double shift = r.get_optional_number("shift_factor", 0.0);  // None: no shift
  // diffusers' tile size (its tiling is off until enable_tiling, as vvae's) is sample_size;
  // a size the tiles cannot take (not a multiple of the ratio, or a list) leaves vvae's default.
  const int64_t ratio = int64_t{1} << (widths.size() - 1);
  std::optional<int64_t> tile;
  if (c.contains("sample_size") && c["sample_size"].is_number_integer()) {
    const int64_t size = r.get_int("sample_size", 0, 1, kMaxSide);
    if (size % ratio == 0) tile = size;
  }
  // What does not change encode or decode: pipelines' latent statistics and their dtype hint.
  for (const char* key : {"sample_size", "latents_mean", "latents_std", "force_upcast"})
    r.ignore(key);
  r.finish();
  const int64_t ch = widths.front();
  Json mult = Json::array();
  for (int64_t w : widths) {
    if (w % ch != 0)
      fail("diffusers AutoencoderKL config.block_out_channels ", Json(widths).dump(),
           ": every width must be a multiple of the first (the Flux AE's ch * ch_mult)");
    mult.push_back(w / ch);
  }
  Json args{{"in_channels", in_channels},
            {"out_ch", out_channels},
            {"ch", ch},
            {"ch_mult", mult},
            {"num_res_blocks", layers},
            {"z_channels", latent},
            {"scale_factor", scale},
            {"shift_factor", shift}};
  if (tile) args["vvae_tile_size"] = *tile;
  return args;
}

std::unique_ptr<Codec> build_ae2d(const Json& args, WeightStore& weights) {
  return std::make_unique<AutoEncoder2D>(Ae2dConfig::parse(args), weights);
}

TilingPair tiling_of_ae2d(const Json& args) {
  return ae2d_tiling(Ae2dConfig::parse(args));
}

}  // namespace

Family ae2d_family() {
  return {.name = "ae2d",
          .aliases = {"autoencoder_2d", "AutoEncoder", "AutoEncoderFlux"},
          .build = build_ae2d,
          .checkpoint_renames = diffusers_renames,
          .diffusers_class = "AutoencoderKL",
          .from_diffusers = ae2d_from_diffusers,
          // No temporal keys: the 2D AE codes frame by frame.
          .tiling_keys = TilingKeys{.spatial_on = "vvae_spatial_tiling",
                                    .tile_size = "vvae_tile_size",
                                    .overlap = "vvae_tile_overlap"},
          .tiling = tiling_of_ae2d,
          .upstream_tiles = false,
          .presets = {{"flux-ae", "ae2d",
                       "Flux / Open-Sora 2D AutoEncoder: 8x8 spatial, 16 latent channels "
                       "(ae.safetensors)",
                       Json{{"resolution", 256},
                            {"in_channels", 3},
                            {"ch", 128},
                            {"out_ch", 3},
                            {"ch_mult", {1, 2, 4, 4}},
                            {"num_res_blocks", 2},
                            {"z_channels", 16},
                            {"scale_factor", 0.3611},
                            {"shift_factor", 0.1159}}}}};
}

}  // namespace vvae
