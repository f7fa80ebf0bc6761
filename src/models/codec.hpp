#pragma once
// The codec base: what every family shares, written once. A family implements its encoder and
// decoder on one sample (or one frame) and the shape rule of each, and describes itself in a
// CodecSpec; the base owns the rest:
//   - the clip rules: channels, H and W multiples of the spatial ratio, valid frame counts;
//   - the per-sample loop: crop each sample (or frame) of the (B, C, T, H, W) input to a
//     channels-last tensor, run the family's network, paste its output back;
//   - the tiling (models/tiling.hpp) around that loop, in each direction;
//   - the latent: a Gaussian posterior with scale/shift (the 2D AE, HunyuanVideo) or a plain
//     scale (the DC-AE's optional scaling_factor);
//   - the ModelInfo fields a family determines.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/tiling.hpp"
#include "vvae/model.hpp"

namespace vvae {

// How the encoder's output becomes the latent, and back.
struct LatentSpec {
  // kGaussian: the encoder gives moments [mean | logvar] (2 * latent channels), the latent is
  //   scale * (mode or sample - shift) (opensora/models/vae/utils.py DiagonalGaussianDistribution
  //   and the families' encode()); decoding takes z / scale + shift.
  // kDeterministic: the encoder gives the latent, divided by `scale` when it is set (the
  //   DC-AE's scaling_factor, applied per sample as upstream does); decoding multiplies.
  enum class Kind { kGaussian, kDeterministic };
  Kind kind = Kind::kGaussian;
  std::optional<double> scale{};
  double shift = 0.0;

  static LatentSpec gaussian(double scale, double shift) { return {Kind::kGaussian, scale, shift}; }
  static LatentSpec deterministic(std::optional<double> scale) {
    return {Kind::kDeterministic, scale, 0.0};
  }
  bool variational() const { return kind == Kind::kGaussian; }
};

struct CodecSpec {
  std::string family{};  // names the model in messages: "the hunyuan model takes ..."
  int64_t in_channels = 3;
  int64_t latent_channels = 16;
  int64_t out_channels = 3;
  int64_t time_ratio = 1;  // frames per latent frame
  // Latent frame 0 codes frame 0 alone: clips have 1 + time_ratio * k frames. Otherwise a
  // clip has one frame or a multiple of time_ratio frames, at least `min_frames`.
  bool causal_time = false;
  int64_t min_frames = 1;
  int64_t spatial_ratio = 1;  // pixels per latent pixel; H and W must be multiples of it
  // What the family's network codes at a time: a whole sample (1, T, H, W, C), or one frame
  // (1, H, W, C) of it (the 2D AE codes every frame on its own).
  enum class Unit { kSample, kFrame };
  Unit unit = Unit::kSample;
  LatentSpec latent{};
  TilingSpec encode_tiling{}, decode_tiling{};  // untiled by default
};

class Codec {
 public:
  explicit Codec(CodecSpec spec);
  virtual ~Codec() = default;
  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;

  const CodecSpec& spec() const { return spec_; }
  // Fills the ModelInfo fields the family determines (channels, ratios, variational).
  void describe(ModelInfo& info) const;

  // Each call below runs with `tiling` where given (a tiling of this call's, e.g. one chosen to
  // fit a memory cap), else with the config's (CodecSpec::encode_tiling / decode_tiling).

  // Validates the input (the clip rules, then the tiling) and returns the output shape, or
  // throws an Error saying why the shape is invalid and which shapes are.
  Shape encoded_shape(const Shape& x, const TilingSpec* tiling = nullptr) const;
  Shape decoded_shape(const Shape& z, const TilingSpec* tiling = nullptr) const;
  // How a run of this shape would be carried out (tiles and the like), one line each.
  std::vector<std::string> encode_notes(const Shape& x, const TilingSpec* tiling = nullptr) const;
  std::vector<std::string> decode_notes(const Shape& z, const TilingSpec* tiling = nullptr) const;
  // How many tiles a run of this shape runs (1 untiled).
  int64_t encode_tiles(const Shape& x, const TilingSpec* tiling = nullptr) const;
  int64_t decode_tiles(const Shape& z, const TilingSpec* tiling = nullptr) const;

  EncodeResult encode(const Tensor& x, const EncodeOptions& options,
                      const TilingSpec* tiling = nullptr) const;
  Tensor decode(const Tensor& z, const DecodeOptions& options = {},
                const TilingSpec* tiling = nullptr) const;
  // The same, reading the input's frames from `read` as the tiles need them (encode), or
  // handing the output's frames to `write` as they are finished (decode): with temporal tiles
  // (or a family that codes frame by frame) the clip is never whole in memory. The numbers are
  // those of encode and decode.
  EncodeResult encode_streamed(const Shape& x, const FrameSource& read,
                               const EncodeOptions& options,
                               const TilingSpec* tiling = nullptr) const;
  void decode_streamed(const Tensor& z, const FrameSink& write, const DecodeOptions& options = {},
                       const TilingSpec* tiling = nullptr) const;

 protected:
  // The family's networks on one unit (Unit: a sample or a frame), channels-last: the encoder
  // to its raw output (moments, for a Gaussian latent), the decoder from the unscaled latent.
  virtual Tensor encode_unit(const Tensor& x) const = 0;
  virtual Tensor decode_unit(const Tensor& z) const = 0;
  // Their output shapes for any (B, C, T, H, W) input, a whole clip or a tile, channels-first,
  // as upstream computes them; throw for a shape the network cannot take.
  virtual Shape encoder_shape(const Shape& x) const = 0;
  virtual Shape decoder_shape(const Shape& z) const = 0;
  // What the family adds to the notes of a decode plan (none by default).
  virtual std::vector<std::string> decode_notes_extra() const { return {}; }

 private:
  class Steps;
  void check_input(const Shape& x) const;
  // `scaled`: apply the latent's scale where upstream does (off for unscaled latents).
  Tensor run_units(const Tensor& x, bool encode, bool scaled, Steps& progress) const;
  // The steps a run of x takes (one per unit through the network), reporting to `progress`.
  Steps count_steps(const Shape& x, const TilingSpec& tiling,
                    const ProgressCallback& progress) const;
  const TilingSpec& encode_tiling(const TilingSpec* tiling) const {
    return tiling != nullptr ? *tiling : spec_.encode_tiling;
  }
  const TilingSpec& decode_tiling(const TilingSpec* tiling) const {
    return tiling != nullptr ? *tiling : spec_.decode_tiling;
  }
  // The tiling a run takes: `tiling`, cut into one-frame temporal tiles for a family that codes
  // frame by frame (streaming, with the same numbers).
  TilingSpec run_tiling(const TilingSpec& tiling) const;
  ShapeRule encoder_rule() const;
  ShapeRule decoder_rule() const;

  CodecSpec spec_;
};

}  // namespace vvae
