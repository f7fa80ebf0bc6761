#include "models/codec.hpp"

#include <utility>

#include "core/dry_run.hpp"
#include "models/family.hpp"
#include "models/posterior.hpp"
#include "ops/layout.hpp"
#include "vvae/error.hpp"

namespace vvae {

Codec::Codec(CodecSpec spec) : spec_(std::move(spec)) {
  if (spec_.latent.variational() && !spec_.latent.scale)
    fail("internal: a Gaussian latent needs a scale");
}

// The steps of one call (a unit through the network each), reported to its progress callback.
class Codec::Steps {
 public:
  Steps(const ProgressCallback& progress, int64_t total) : progress_(progress), total_(total) {}
  void done() {
    ++done_;
    if (progress_ && !progress_(done_, total_)) throw Cancelled();
  }

 private:
  const ProgressCallback& progress_;
  int64_t total_ = 0;
  int64_t done_ = 0;
};

Codec::Steps Codec::count_steps(const Shape& x, const TilingSpec& tiling,
                                const ProgressCallback& progress) const {
  if (!progress) return Steps(progress, 0);
  int64_t total = 0;
  for (int64_t frames : tile_frame_counts(x, tiling))
    total += spec_.unit == CodecSpec::Unit::kFrame ? x[0] * frames : x[0];
  return Steps(progress, total);
}

void Codec::describe(ModelInfo& info) const {
  info.variational = spec_.latent.variational();
  info.scale_factor = spec_.latent.scale.value_or(1.0);
  info.shift_factor = spec_.latent.shift;
  info.in_channels = spec_.in_channels;
  info.latent_channels = spec_.latent_channels;
  info.time_ratio = spec_.time_ratio;
  info.causal_time = spec_.causal_time;
  info.spatial_ratio = spec_.spatial_ratio;
}

void Codec::check_input(const Shape& x) const {
  const CodecSpec& s = spec_;
  check_clip_shape(x, s.in_channels, "input");
  const int64_t r = s.time_ratio, f = s.spatial_ratio, t = x[2];
  if (x[3] % f != 0 || x[4] % f != 0)
    fail("the ", s.family, " model needs H and W to be multiples of ", f, ", got ", x[3], "x", x[4],
         " (crop or resize the frames)");
  if (r <= 1) return;
  if (s.causal_time) {
    if ((t - 1) % r != 0)
      fail("the ", s.family, " model takes clips of 1 + ", r, "k frames (1, ", 1 + r, ", ",
           1 + 2 * r, ", ", 1 + 3 * r, ", ...), got ", t, " frames (trim the clip to ",
           1 + (t - 1) / r * r, " frames)");
    return;
  }
  if (t != 1 && (t % r != 0 || t < s.min_frames))
    fail("the ", s.family, " model codes 1 frame (an image) or a multiple of ", r, " frames",
         s.min_frames > r ? cat(" that is at least ", s.min_frames) : std::string(), ", got ", t,
         t == r && s.min_frames > r
             ? cat(" (", r, " frames encode to one latent frame, which decodes to a single frame)")
             : std::string());
}

ShapeRule Codec::encoder_rule() const {
  return [this](const Shape& x) { return encoder_shape(x); };
}

ShapeRule Codec::decoder_rule() const {
  return [this](const Shape& z) { return decoder_shape(z); };
}

Shape Codec::encoded_shape(const Shape& x, const TilingSpec* tiling) const {
  check_input(x);
  Shape z = tiled_output_shape(x, encode_tiling(tiling), encoder_rule());
  if (spec_.latent.variational()) z[1] /= 2;  // moments [mean | logvar]
  return z;
}

Shape Codec::decoded_shape(const Shape& z, const TilingSpec* tiling) const {
  check_clip_shape(z, spec_.latent_channels, "latent");
  return tiled_output_shape(z, decode_tiling(tiling), decoder_rule());
}

int64_t Codec::encode_tiles(const Shape& x, const TilingSpec* tiling) const {
  encoded_shape(x, tiling);
  return static_cast<int64_t>(tile_frame_counts(x, encode_tiling(tiling)).size());
}

int64_t Codec::decode_tiles(const Shape& z, const TilingSpec* tiling) const {
  decoded_shape(z, tiling);
  return static_cast<int64_t>(tile_frame_counts(z, decode_tiling(tiling)).size());
}

std::vector<std::string> Codec::encode_notes(const Shape& x, const TilingSpec* tiling) const {
  check_input(x);
  return describe_tiling(x, encode_tiling(tiling), encoder_rule());
}

std::vector<std::string> Codec::decode_notes(const Shape& z, const TilingSpec* tiling) const {
  check_clip_shape(z, spec_.latent_channels, "latent");
  std::vector<std::string> notes = describe_tiling(z, decode_tiling(tiling), decoder_rule());
  for (auto& note : decode_notes_extra()) notes.push_back(std::move(note));
  return notes;
}

// The per-sample loop: every sample (or frame) of a (B, C, T, H, W) input, cropped to a fresh
// channels-last tensor, through the family's network, pasted into the output. Samples never mix,
// so coding them one at a time only bounds memory. The latent's scale is applied per unit, where
// upstream applies it (a decode unscales its input; the DC-AE's encode divides its output).
Tensor Codec::run_units(const Tensor& x, bool encode, bool scaled, Steps& progress) const {
  const LatentSpec& latent = spec_.latent;
  Tensor out = Tensor::empty(encode ? encoder_shape(x.shape()) : decoder_shape(x.shape()));
  const auto run = [&](Tensor unit) {
    if (!encode && scaled && latent.scale) {
      if (latent.variational())
        remove_latent_scale(unit, *latent.scale, latent.shift);
      else
        multiply_latent(unit, *latent.scale);
    }
    Tensor y = encode ? encode_unit(unit) : decode_unit(unit);
    if (encode && scaled && !latent.variational() && latent.scale) divide_latent(y, *latent.scale);
    progress.done();
    return y;
  };
  const int64_t channels = x.dim(1), frames = x.dim(2), height = x.dim(3), width = x.dim(4);
  if (spec_.unit == CodecSpec::Unit::kFrame) {
    repeat_same_shapes(x.dim(0) * frames, [&](int64_t i) {
      const int64_t b = i / frames, t = i % frames;
      const Tensor frame = crop_to_channels_last(x, b, {t, t + 1, 0, height, 0, width});
      const Tensor y = run(frame.reshape({1, height, width, channels}));
      paste_channels_first(y.reshape({1, 1, y.dim(1), y.dim(2), y.dim(3)}), out, b, t, 0, 0);
    });
  } else {
    repeat_same_shapes(x.dim(0), [&](int64_t b) {
      paste_channels_first(run(crop_to_channels_last(x, b, Box::whole(x.shape()))), out, b, 0, 0,
                           0);
    });
  }
  return out;
}

// A family that codes every frame on its own streams a clip a frame at a time when its tiling
// does not cut the clip in time: a temporal tiling of one-frame tiles without overlap, which
// gives the same numbers as coding the whole clip (the frames never meet). Spatial tiles, if
// any, are cut inside each frame.
TilingSpec Codec::run_tiling(const TilingSpec& tiling) const {
  if (spec_.unit != CodecSpec::Unit::kFrame || tiling.temporal) return tiling;
  TilingSpec frames = tiling;
  frames.temporal = true;
  frames.tile_frames = frames.out_tile_frames = 1;
  frames.temporal_overlap = 0.0;
  frames.causal = false;
  frames.min_tail_frames = 0;
  return frames;
}

EncodeResult Codec::encode(const Tensor& x, const EncodeOptions& options,
                           const TilingSpec* tiling) const {
  return encode_streamed(x.shape(), whole_tensor_source(x), options, tiling);
}

EncodeResult Codec::encode_streamed(const Shape& x, const FrameSource& read,
                                    const EncodeOptions& options, const TilingSpec* tiling) const {
  encoded_shape(x, tiling);
  const TilingSpec run_spec = run_tiling(encode_tiling(tiling));
  Steps done = count_steps(x, run_spec, options.progress);
  // The raw output (moments, for a Gaussian latent) is latent-sized: it is assembled whole.
  Tensor raw;
  run_tiled_streamed(
      x, read, run_spec,
      [&](const Tensor& tile) { return run_units(tile, true, !options.unscaled, done); },
      encoder_rule(),
      assemble_frames(raw, tiled_output_shape(x, encode_tiling(tiling), encoder_rule())));
  EncodeResult out;
  if (!spec_.latent.variational()) {
    out.z = std::move(raw);
    return out;
  }
  // The moments (blended, when tiled) make the posterior; the mode or a draw is scaled once.
  const DiagonalGaussian posterior = DiagonalGaussian::from_moments(raw);
  out.z = options.sample ? posterior.sample(options.seed) : posterior.mode();
  if (!options.unscaled) apply_latent_scale(out.z, *spec_.latent.scale, spec_.latent.shift);
  out.mean = posterior.mean();
  out.logvar = posterior.logvar();
  out.moments = std::move(raw);
  return out;
}

Tensor Codec::decode(const Tensor& z, const DecodeOptions& options,
                     const TilingSpec* tiling) const {
  Tensor out;
  decode_streamed(z, assemble_frames(out, decoded_shape(z.shape(), tiling)), options, tiling);
  return out;
}

void Codec::decode_streamed(const Tensor& z, const FrameSink& write, const DecodeOptions& options,
                            const TilingSpec* tiling) const {
  decoded_shape(z.shape(), tiling);
  const TilingSpec run_spec = run_tiling(decode_tiling(tiling));
  Steps done = count_steps(z.shape(), run_spec, options.progress);
  run_tiled_streamed(
      z.shape(), whole_tensor_source(z), run_spec,
      [&](const Tensor& tile) { return run_units(tile, false, !options.unscaled, done); },
      decoder_rule(), write);
}

}  // namespace vvae
