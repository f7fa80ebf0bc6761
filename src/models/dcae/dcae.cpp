// Module tree (upstream names; a member is the attribute upstream gives it, so a weight key
// reads as a path through it; models/dcae/blocks.hpp has the blocks):
//
//   DCAE
//   ├── encoder
//   │   ├── project_in.conv                      k3, in_channels -> width[0]
//   │   ├── stages.{s}.op_list.{0..depth[s]-1}   blocks of width[s] (ResBlock, EViTS5_GLU)
//   │   ├── stages.{s}.op_list.{depth[s]}        downsampling width[s] -> width[s+1] (s < n-1)
//   │   └── project_out.main.op_list.0.conv      k3, width[n-1] -> latent, + channel averaging
//   └── decoder
//       ├── project_in.main.conv                 k3, latent -> width[n-1], + channel duplicating
//       ├── stages.{s}.op_list.0                 upsampling width[s+1] -> width[s] (s < n-1)
//       ├── stages.{s}.op_list.{1..depth[s]}     blocks of width[s] (from 0 in the last stage);
//       │                                        stages run from n-1 down to 0
//       ├── project_out.op_list.0                RMSNorm3d, then ReLU (op_list.1)
//       └── project_out.op_list.2.conv           k3, width[0] -> in_channels
//
// Clips are coded one sample at a time, as upstream's encode_single / decode_single, on
// channels-last (1, T, H, W, C) activations, by the codec base (models/codec.hpp).
#include "models/dcae/dcae.hpp"

#include <cmath>
#include <optional>

#include "models/dcae/blocks.hpp"
#include "ops/pixel_shuffle.hpp"
#include "ops/rms_norm.hpp"
#include "vvae/error.hpp"
#include "vvae/limits.hpp"

namespace vvae {
namespace {

using dcae::ConvLayer;
using dcae::DownsampleBlock;
using dcae::make_stage_block;
using dcae::OpSequential;
using dcae::RMSNorm3d;
using dcae::UpsampleBlock;

// vvae's own model_args key (LoadOptions::model_args, --dcae-short-tail-compat): reproduce
// upstream's short last temporal decode tile.
constexpr const char* kShortTailKey = "dcae_short_tail_compat";

// --- config --------------------------------------------------------------------------------

// EncoderConfig / DecoderConfig, reduced to what varies in the implemented subset.
struct CoderConfig {
  int64_t in_channels = 0;
  int64_t latent_channels = 0;
  std::vector<int64_t> width_list = {128, 256, 512, 512, 1024, 1024};
  std::vector<int64_t> depth_list = {2, 2, 2, 2, 2, 2};
  std::vector<std::string> block_type;  // one per stage
  std::vector<bool> temporal;           // temporal_downsample / temporal_upsample, one per stage

  int64_t stages() const { return static_cast<int64_t>(width_list.size()); }
  int64_t width(int64_t s) const { return width_list[static_cast<size_t>(s)]; }
  int64_t depth(int64_t s) const { return depth_list[static_cast<size_t>(s)]; }
  const std::string& block(int64_t s) const { return block_type[static_cast<size_t>(s)]; }
  bool temporal_at(int64_t s) const { return temporal[static_cast<size_t>(s)]; }
  // Resampling happens between stages: stage s < n-1 halves (doubles) H and W, and T when
  // temporal_at(s) and T > 1.
  int64_t time_ratio() const {
    int64_t r = 1;
    for (int64_t s = 0; s + 1 < stages(); ++s) r *= temporal_at(s) ? 2 : 1;
    return r;
  }
  int64_t spatial_ratio() const { return int64_t{1} << (stages() - 1); }
};

// A key whose only implemented value is `supported`. When the key is absent upstream's default
// applies, which must then be the supported value too.
void expect(ArgReader& r, const std::string& path, const std::string& key, const Json& supported,
            const Json& upstream_default, const std::string& why) {
  if (!r.has(key) && upstream_default != supported)
    fail("dcae ", path, ".", key, " is not set and upstream's default ", upstream_default.dump(),
         " is not implemented (", why, "); set it to ", supported.dump());
  r.require(key, supported, why);
}

CoderConfig parse_coder(const Json& args, bool encoder, int64_t in, int64_t latent) {
  const std::string path = encoder ? "model_args.encoder" : "model_args.decoder";
  ArgReader r(args, "dcae", path);
  CoderConfig c;
  using namespace limits;
  c.in_channels = r.get_int("in_channels", in, 1, kMaxChannels);
  c.latent_channels = r.get_int("latent_channels", latent, 1, kMaxChannels);
  c.width_list = r.get_int_list("width_list", c.width_list, 1, kMaxChannels, kMaxStages);
  c.depth_list = r.get_int_list("depth_list", c.depth_list, 0, kMaxBlocksPerStage, kMaxStages);
  c.block_type = r.get_string_list("block_type", {"ResBlock"});
  const Json null;
  expect(r, path, "norm", "rms3d", "rms2d", "vvae implements the video model's RMSNorm3d");
  expect(r, path, "act", "silu", "silu", "vvae implements SiLU blocks");
  expect(r, path, "is_video", true, false, "vvae implements the video model");
  if (encoder) {
    expect(r, path, "downsample_block_type", "Conv", "ConvPixelUnshuffle",
           "the video model downsamples with strided convolutions");
    expect(r, path, "downsample_match_channel", true, true, "stage widths change at downsampling");
    expect(r, path, "downsample_shortcut", "averaging", "averaging",
           "vvae implements the channel-averaging shortcut");
    expect(r, path, "out_norm", null, null, "the encoder output has no norm");
    expect(r, path, "out_act", null, null, "the encoder output has no activation");
    expect(r, path, "out_shortcut", "averaging", "averaging",
           "vvae implements the channel-averaging shortcut");
    expect(r, path, "double_latent", false, false, "the latent is deterministic");
    c.temporal = r.get_bool_list("temporal_downsample", {});
  } else {
    expect(r, path, "in_shortcut", "duplicating", "duplicating",
           "vvae implements the channel-duplicating shortcut");
    expect(r, path, "upsample_block_type", "InterpolateConv", "ConvPixelShuffle",
           "the video model upsamples by nearest interpolation and a convolution");
    expect(r, path, "upsample_match_channel", true, true, "stage widths change at upsampling");
    expect(r, path, "upsample_shortcut", "duplicating", "duplicating",
           "vvae implements the channel-duplicating shortcut");
    expect(r, path, "out_norm", "rms3d", "rms2d", "the decoder output norm is RMSNorm3d");
    expect(r, path, "out_act", "relu", "relu", "the decoder output activation is ReLU");
    c.temporal = r.get_bool_list("temporal_upsample", {});
  }
  r.finish();

  const int64_t n = c.stages();
  const auto bad = [&](auto&&... parts) { fail("dcae ", path, ": ", parts...); };
  if (n < 1) bad("width_list is empty");
  if (static_cast<int64_t>(c.depth_list.size()) != n)
    bad("depth_list has ", c.depth_list.size(), " entries for ", n, " stages");
  if (c.block_type.size() == 1) c.block_type.assign(static_cast<size_t>(n), c.block_type[0]);
  if (static_cast<int64_t>(c.block_type.size()) != n)
    bad("block_type has ", c.block_type.size(), " entries for ", n, " stages");
  if (c.temporal.empty()) c.temporal.assign(static_cast<size_t>(n), false);
  if (static_cast<int64_t>(c.temporal.size()) != n)
    bad(encoder ? "temporal_downsample" : "temporal_upsample", " has ", c.temporal.size(),
        " entries for ", n, " stages");
  if (c.in_channels != in || c.latent_channels != latent)
    bad("in_channels / latent_channels (", c.in_channels, ", ", c.latent_channels,
        ") differ from the model's (", in, ", ", latent, ")");
  if (in < 1 || latent < 1) bad("channel counts must be positive");
  for (int64_t s = 0; s < n; ++s) {
    if (c.depth(s) < 1)
      bad("stage ", s, " has depth ", c.depth(s), "; stages without blocks are not implemented");
    if (c.width(s) < 1) bad("stage widths must be positive");
    if (c.block(s) == "EViTS5_GLU" && c.width(s) < dcae::kHeadDim)
      bad("stage ", s, " (EViTS5_GLU) needs a width of at least ", dcae::kHeadDim,
          " (one attention head)");
    if (c.block(s) != "ResBlock" && c.block(s) != "EViTS5_GLU")
      bad("block_type '", c.block(s), "' is not implemented (vvae has ResBlock and EViTS5_GLU)");
  }
  // The parameter-free shortcuts regroup channels: the counts must divide as upstream asserts.
  for (int64_t s = 0; s + 1 < n; ++s) {
    const int64_t lo = c.width(s), hi = c.width(s + 1);
    for (int64_t volume : {int64_t{4}, int64_t{8}}) {
      if (volume == 8 && !c.temporal_at(s)) continue;
      if ((lo * volume) % hi != 0)
        bad("the shortcut between stages ", s, " and ", s + 1, " cannot regroup ", lo * volume,
            " channels into ", hi);
    }
  }
  if (c.width(n - 1) % latent != 0)
    bad("the last width ", c.width(n - 1), " is not a multiple of latent_channels ", latent);
  return c;
}

struct DcaeConfig {
  int64_t in_channels = 3;
  int64_t latent_channels = 32;
  int64_t time_compression_ratio = 1;
  int64_t spatial_compression_ratio = 32;
  CoderConfig encoder, decoder;
  std::optional<double> scaling_factor;
  bool use_spatial_tiling = false;
  bool use_temporal_tiling = false;
  int64_t spatial_tile_size = 256;
  int64_t temporal_tile_size = 32;
  double tile_overlap_factor = 0.25;
  bool short_tail_compat = false;

  static DcaeConfig parse(const Json& args) {
    ArgReader r(args, "dcae");
    DcaeConfig c;
    using namespace limits;
    c.in_channels = r.get_int("in_channels", c.in_channels, 1, kMaxChannels);
    c.latent_channels = r.get_int("latent_channels", c.latent_channels, 1, kMaxChannels);
    c.time_compression_ratio =
        r.get_int("time_compression_ratio", c.time_compression_ratio, 1, kMaxFrames);
    c.spatial_compression_ratio =
        r.get_int("spatial_compression_ratio", c.spatial_compression_ratio, 1, kMaxSide);
    c.encoder = parse_coder(r.get_object("encoder"), true, c.in_channels, c.latent_channels);
    c.decoder = parse_coder(r.get_object("decoder"), false, c.in_channels, c.latent_channels);
    r.get_bool("use_quant_conv", false);  // upstream's DCAE never builds a quant conv
    r.ignore("pretrained_path");
    r.ignore("pretrained_source");
    const double scaling = r.get_optional_number("scaling_factor", std::nan(""));
    if (!std::isnan(scaling)) c.scaling_factor = scaling;
    r.require("is_image_model", false, "vvae codes videos; images are clips of one frame");
    r.require("is_training", false, "vvae runs the inference path (per-sample loop, scaling)");
    c.use_spatial_tiling = r.get_bool("use_spatial_tiling", c.use_spatial_tiling);
    c.use_temporal_tiling = r.get_bool("use_temporal_tiling", c.use_temporal_tiling);
    c.spatial_tile_size = r.get_int("spatial_tile_size", c.spatial_tile_size, 1, kMaxSide);
    c.temporal_tile_size = r.get_int("temporal_tile_size", c.temporal_tile_size, 1, kMaxFrames);
    c.tile_overlap_factor = r.get_number("tile_overlap_factor", c.tile_overlap_factor);
    c.short_tail_compat = r.get_bool(kShortTailKey, c.short_tail_compat);
    r.finish();
    c.validate();
    return c;
  }

  void validate() const {
    for (const CoderConfig* coder : {&encoder, &decoder}) {
      const char* which = coder == &encoder ? "encoder" : "decoder";
      if (coder->spatial_ratio() != spatial_compression_ratio)
        fail("dcae model_args.spatial_compression_ratio is ", spatial_compression_ratio,
             " but the ", which, "'s ", coder->stages(), " stages give ", coder->spatial_ratio());
      if (coder->time_ratio() != time_compression_ratio)
        fail("dcae model_args.time_compression_ratio is ", time_compression_ratio, " but the ",
             which, "'s temporal stages give ", coder->time_ratio());
    }
    if (scaling_factor && *scaling_factor == 0.0)
      fail("dcae model_args.scaling_factor must not be 0");
    if (spatial_tile_size < spatial_compression_ratio ||
        spatial_tile_size % spatial_compression_ratio != 0)
      fail("dcae model_args.spatial_tile_size ", spatial_tile_size,
           " must be a positive multiple of the spatial compression ", spatial_compression_ratio);
    if (temporal_tile_size < time_compression_ratio ||
        temporal_tile_size % time_compression_ratio != 0)
      fail("dcae model_args.temporal_tile_size ", temporal_tile_size,
           " must be a positive multiple of the temporal compression ", time_compression_ratio);
    if (!(tile_overlap_factor >= 0.0 && tile_overlap_factor < 1.0))
      fail("dcae model_args.tile_overlap_factor must be in [0, 1), got ", tile_overlap_factor);
  }
};

// --- encoder and decoder -------------------------------------------------------------------

// Encoder: project_in (ConvLayer k3), stages.{s} (OpSequential: the blocks, then the
// downsampling for s < n-1), project_out = ResidualBlock(main = OpSequential([ConvLayer k3]),
// shortcut = PixelUnshuffleChannelAveragingDownSampleLayer with factor 1).
struct Encoder {
  // In upstream's parameter order: project_in, stages, project_out.
  Encoder(const Scope& s, const CoderConfig& c)
      : project_in(ConvLayer::load(s["project_in"], c.in_channels, c.width(0), {})) {
    for (int64_t i = 0; i < c.stages(); ++i) {
      const Scope ops = s["stages"][i]["op_list"];
      OpSequential stage;
      for (int64_t d = 0; d < c.depth(i); ++d)
        stage.op_list.push_back(make_stage_block(c.block(i), ops[d], c.width(i)));
      if (i + 1 < c.stages())
        stage.op_list.push_back(std::make_unique<DownsampleBlock>(
            ops[c.depth(i)], c.width(i), c.width(i + 1), c.temporal_at(i)));
      stages.push_back(std::move(stage));
    }
    project_out = {ConvLayer::load(s["project_out"]["main"]["op_list"][0], c.width(c.stages() - 1),
                                   c.latent_channels, {}),
                   c.latent_channels};
  }

  // (1, T, H, W, in_channels) -> (1, T / time_ratio, H / f, W / f, latent), T == 1 -> 1.
  Tensor operator()(const Tensor& x) const {
    Tensor h = project_in(x);
    for (const OpSequential& stage : stages) h = stage(std::move(h));
    return project_out(h);
  }

  struct ProjectOut {
    ConvLayer main;  // main.op_list.0
    int64_t latent_channels = 0;
    Tensor operator()(const Tensor& h) const {
      Tensor z = pixel_unshuffle_average(h, {1, 1, 1}, latent_channels);  // the shortcut
      main.conv.accumulate(h, z);
      return z;
    }
  };

  ConvLayer project_in;
  std::vector<OpSequential> stages;
  ProjectOut project_out;
};

// Decoder: project_in = ResidualBlock(main = ConvLayer k3, shortcut =
// ChannelDuplicatingPixelShuffleUpSampleLayer with factor 1), stages.{s} (OpSequential: the
// upsampling for s < n-1, then the blocks; run from n-1 down to 0), project_out =
// OpSequential([RMSNorm3d, ReLU, ConvLayer k3]).
struct Decoder {
  // In upstream's parameter order: project_in, stages (stages.0 first; stage s < n-1 opens
  // with its upsampling), project_out.
  Decoder(const Scope& s, const CoderConfig& c)
      : project_in{ConvLayer::load(s["project_in"]["main"], c.latent_channels,
                                   c.width(c.stages() - 1), {}),
                   c.width(c.stages() - 1)} {
    for (int64_t i = 0; i < c.stages(); ++i) {
      const Scope ops = s["stages"][i]["op_list"];
      OpSequential stage;
      int64_t op = 0;
      if (i + 1 < c.stages())
        stage.op_list.push_back(std::make_unique<UpsampleBlock>(ops[op++], c.width(i + 1),
                                                                c.width(i), c.temporal_at(i)));
      for (int64_t d = 0; d < c.depth(i); ++d)
        stage.op_list.push_back(make_stage_block(c.block(i), ops[op++], c.width(i)));
      stages.push_back(std::move(stage));
    }
    project_out = {RMSNorm3d::load(s["project_out"]["op_list"][0], c.width(0)),
                   ConvLayer::load(s["project_out"]["op_list"][2], c.width(0), c.in_channels, {})};
  }

  // (1, t, h, w, latent) -> (1, t * time_ratio, h * f, w * f, in_channels), t == 1 -> 1.
  Tensor operator()(const Tensor& z) const {
    Tensor h = project_in(z);
    for (auto stage = stages.rbegin(); stage != stages.rend(); ++stage) h = (*stage)(std::move(h));
    return project_out(std::move(h));
  }

  struct ProjectIn {
    ConvLayer main;
    int64_t out_channels;
    Tensor operator()(const Tensor& z) const {
      Tensor h = duplicate_pixel_shuffle(z, {1, 1, 1}, out_channels);  // the shortcut
      main.conv.accumulate(z, h);
      return h;
    }
  };
  struct ProjectOut {
    RMSNorm3d norm;  // op_list.0, with the ReLU of op_list.1 fused
    ConvLayer conv;  // op_list.2
    Tensor operator()(Tensor h) const {
      norm.apply(h, Activation::kRelu);
      return conv(h);
    }
  };

  ProjectIn project_in;
  std::vector<OpSequential> stages;
  ProjectOut project_out;
};

// --- the model -----------------------------------------------------------------------------

// Open-Sora's tiles (spatial_tile_size px, temporal_tile_size frames). Upstream decodes a last
// temporal tile of one latent frame to one frame (the T == 1 path), so the clip comes back
// short; vvae merges such a tile into the previous one unless dcae_short_tail_compat is set.
TilingPair dcae_tiling(const DcaeConfig& c) {
  TilingPair p = tiling_pair({.spatial = c.use_spatial_tiling,
                              .temporal = c.use_temporal_tiling,
                              .overlap = c.tile_overlap_factor,
                              .tile = c.spatial_tile_size,
                              .latent_tile = c.spatial_tile_size / c.spatial_compression_ratio,
                              .tile_frames = c.temporal_tile_size,
                              .latent_frames = c.temporal_tile_size / c.time_compression_ratio});
  if (c.short_tail_compat)
    p.decode.allow_short_tail = true;
  else
    p.decode.min_tail_frames = 2;
  return p;
}

// DCAE: z = encoder(x) / scaling_factor, x = decoder(z * scaling_factor) (the codec base's
// deterministic latent), one sample at a time as upstream's encode_single / decode_single.
class Dcae : public Codec {
 public:
  Dcae(const DcaeConfig& c, WeightStore& weights)
      : Codec({.family = "dcae",
               .in_channels = c.in_channels,
               .latent_channels = c.latent_channels,
               .out_channels = c.in_channels,
               .time_ratio = c.time_compression_ratio,
               // 4 frames encode to one latent frame, which decodes to a single frame.
               .min_frames = 2 * c.time_compression_ratio,
               .spatial_ratio = c.spatial_compression_ratio,
               .latent = LatentSpec::deterministic(c.scaling_factor),
               .encode_tiling = dcae_tiling(c).encode,
               .decode_tiling = dcae_tiling(c).decode}),
        config_(c),
        encoder(Scope(weights)["encoder"], c.encoder),
        decoder(Scope(weights)["decoder"], c.decoder) {}

 protected:
  Tensor encode_unit(const Tensor& x) const override { return encoder(x); }
  Tensor decode_unit(const Tensor& z) const override { return decoder(z); }

  // What one untiled run accepts, step by step as upstream's asserts: H and W halve at every
  // downsampling; T halves at a temporal one unless it is 1, and must then be even.
  Shape encoder_shape(const Shape& x) const override {
    const CoderConfig& c = config_.encoder;
    const int64_t f = c.spatial_ratio();
    if (x[3] % f != 0 || x[4] % f != 0)
      fail("H and W must be multiples of ", f, ", got ", x[3], "x", x[4]);
    int64_t t = x[2];
    for (int64_t s = 0; s + 1 < c.stages(); ++s) {
      if (!c.temporal_at(s) || t == 1) continue;
      if (t % 2 != 0)
        fail(x[2], " frames cannot be downsampled in time (", t, " frames at stage ", s,
             " are odd)");
      t /= 2;
    }
    return {x[0], config_.latent_channels, t, x[3] / f, x[4] / f};
  }

  Shape decoder_shape(const Shape& z) const override {
    const CoderConfig& c = config_.decoder;
    const int64_t f = c.spatial_ratio();
    int64_t t = z[2];
    for (int64_t s = 0; s + 1 < c.stages(); ++s)
      if (c.temporal_at(s) && t != 1) t *= 2;
    return {z[0], config_.in_channels, t, z[3] * f, z[4] * f};
  }

  std::vector<std::string> decode_notes_extra() const override {
    if (!spec().decode_tiling.temporal) return {};
    return {config_.short_tail_compat
                ? "tail rule: upstream's (--dcae-short-tail-compat): a last temporal tile of one "
                  "latent frame decodes to one frame"
                : "tail rule: vvae's: a last temporal tile of one latent frame joins the previous "
                  "tile (--dcae-short-tail-compat keeps upstream's short output)"};
  }

 private:
  DcaeConfig config_;
  // In upstream's parameter order.
  Encoder encoder;
  Decoder decoder;
};

std::unique_ptr<Codec> build_dcae(const Json& args, WeightStore& weights) {
  return std::make_unique<Dcae>(DcaeConfig::parse(args), weights);
}

TilingPair tiling_of_dcae(const Json& args) {
  return dcae_tiling(DcaeConfig::parse(args));
}

Json coder_args(bool encoder) {
  const Json widths = {128, 256, 512, 512, 1024, 1024};
  const Json blocks = {"ResBlock",   "ResBlock",   "ResBlock",
                       "EViTS5_GLU", "EViTS5_GLU", "EViTS5_GLU"};
  const Json temporal = {false, false, false, true, true, false};
  Json j = {{"in_channels", 3},     {"latent_channels", 128}, {"width_list", widths},
            {"block_type", blocks}, {"norm", "rms3d"},        {"act", "silu"},
            {"is_video", true}};
  if (encoder) {
    j["depth_list"] = {2, 2, 2, 3, 3, 3};
    j["downsample_block_type"] = "Conv";
    j["downsample_match_channel"] = true;
    j["downsample_shortcut"] = "averaging";
    j["out_norm"] = nullptr;
    j["out_act"] = nullptr;
    j["out_shortcut"] = "averaging";
    j["double_latent"] = false;
    j["temporal_downsample"] = temporal;
  } else {
    j["depth_list"] = {3, 3, 3, 3, 3, 3};
    j["in_shortcut"] = "duplicating";
    j["upsample_block_type"] = "InterpolateConv";
    j["upsample_match_channel"] = true;
    j["upsample_shortcut"] = "duplicating";
    j["out_norm"] = "rms3d";
    j["out_act"] = "relu";
    j["temporal_upsample"] = temporal;
  }
  return j;
}

}  // namespace

Family dcae_family() {
  // Upstream's dc_ae_f32("dc-ae-f32t4c128") resolved against the DCAEConfig defaults, with
  // Open-Sora's tiling settings (both on, 256 px, 32 frames, overlap 0.25).
  return {
      .name = "dcae",
      .aliases = {"dc_ae", "DCAE", "DC_AE", "dc-ae"},
      .build = build_dcae,
      .tiling_keys = TilingKeys{"use_spatial_tiling", "use_temporal_tiling", "spatial_tile_size",
                                "temporal_tile_size", "tile_overlap_factor"},
      .tiling = tiling_of_dcae,
      .presets = {{"dc-ae-f32t4c128", "dcae",
                   "Open-Sora Video DC-AE: 4x32x32 compression, 128 latent channels "
                   "(F32T4C128_AE.safetensors)",
                   Json{{"in_channels", 3},
                        {"latent_channels", 128},
                        {"time_compression_ratio", 4},
                        {"spatial_compression_ratio", 32},
                        {"encoder", coder_args(true)},
                        {"decoder", coder_args(false)},
                        {"use_quant_conv", false},
                        {"pretrained_path", nullptr},
                        {"pretrained_source", "dc-ae"},
                        {"scaling_factor", nullptr},
                        {"is_image_model", false},
                        {"is_training", false},
                        {"use_spatial_tiling", true},
                        {"use_temporal_tiling", true},
                        {"spatial_tile_size", 256},
                        {"temporal_tile_size", 32},
                        {"tile_overlap_factor", 0.25}}}}};
}

}  // namespace vvae
