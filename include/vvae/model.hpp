#pragma once
// The public API: load a video autoencoder, encode clips to latents, decode latents to clips.
//
//   vvae::LoadOptions load;
//   load.model = "flux-ae";            // a preset, a model directory or a .safetensors file
//   load.weights = "ae.safetensors";
//   vvae::Model model = vvae::Model::load(load);
//   vvae::EncodeResult enc = model.encode(x);   // x: (B, C, T, H, W), values in [-1, 1]
//   vvae::Tensor x_rec = model.decode(enc.z);   // (B, C, T, H, W), not clamped
//
// Every tensor crossing this API is float32, row-major, shaped (B, C, T, H, W).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vvae/compute.hpp"
#include "vvae/error.hpp"
#include "vvae/tensor.hpp"

namespace vvae {

// Overrides for the tiling keys of a model's config; unset fields keep the config's value.
struct TilingOptions {
  bool disable = false;                // --no-tiling: both spatial and temporal tiling off
  bool no_spatial = false;             // --no-spatial-tiling
  bool no_temporal = false;            // --no-temporal-tiling (Open-Sora's t2v setting)
  std::optional<int64_t> tile_size;    // --tile-size: spatial tile, pixels
  std::optional<int64_t> tile_frames;  // --tile-frames: temporal tile, frames
  std::optional<double> overlap;       // --tile-overlap: fraction in [0, 1)
  bool any() const {
    return disable || no_spatial || no_temporal || tile_size || tile_frames || overlap;
  }
};

struct LoadOptions {
  std::string model;    // directory (config.json + weights.safetensors), preset, or checkpoint
  std::string weights;  // checkpoint to use with a preset or an explicit config
  std::string config;   // config.json to use instead of the one in the model directory
  std::string preset;   // forces a preset instead of recognising the checkpoint
  bool strict = false;  // unexpected checkpoint tensors are an error, not a warning
  // Build the architecture without weights (for `vvae info` on a bare preset).
  bool without_weights = false;
  TilingOptions tiling;
  // Settings of the family's own (model_args key -> its JSON value, e.g.
  // {"dcae_short_tail_compat", "true"}), set over the config's after the tiling options; the
  // family refuses keys it does not know.
  std::map<std::string, std::string> model_args;
  ComputeOptions compute;
};

// Progress of a long call: called on the calling thread after each step (one sample, frame or
// tile through the network) with the steps done so far and the call's total. Returning false
// cancels the call, which then throws Cancelled.
using ProgressCallback = std::function<bool(int64_t done, int64_t total)>;

// What a cancelled encode or decode throws.
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

// A clip in parts, for Model::encode_streamed: frames [begin, end) of the (B, C, T, H, W) input
// as a (B, C, end - begin, H, W) tensor. Calls come in order: `begin` never decreases, and the
// spans of neighbouring temporal tiles overlap, so a reader keeps a window of frames from the
// last `begin` on and may drop the frames before it.
using FrameReader = std::function<Tensor(int64_t begin, int64_t end)>;
// The decoded clip's next finished frames, (B, C, t, H, W), in order, for
// Model::decode_streamed. The tensor is the writer's to keep or drop.
using FrameWriter = std::function<void(const Tensor& frames)>;

// What a plan counts for the clip's frames: the whole input and output tensors (encode and
// decode), or a streamed run's window of frames and the parts handed on (encode_streamed and
// decode_streamed).
enum class ClipIo { kWhole, kStreamed };

struct EncodeOptions {
  bool sample = false;  // draw from the posterior instead of taking its mode
  uint64_t seed = 0;    // sampling seed; the same seed gives the same latent on any thread count
  // z as the posterior's mode or draw itself (the DC-AE: the encoder's output), without the
  // scale and shift upstream's encode applies: diffusers' convention, whose pipelines scale the
  // latent themselves.
  bool unscaled = false;
  ProgressCallback progress = nullptr;  // unset: no reports
  // This call's tiling, over the loaded config's as LoadOptions::tiling applies (e.g. the one
  // Model::fit_encode chose); unset: the config's.
  std::optional<TilingOptions> tiling{};
};

struct DecodeOptions {
  // z is unscaled (diffusers' convention, see EncodeOptions::unscaled) rather than the scaled z
  // encode returns by default; the decoder then takes it as it is.
  bool unscaled = false;
  ProgressCallback progress = nullptr;
  std::optional<TilingOptions> tiling{};  // as EncodeOptions::tiling
};

struct EncodeResult {
  Tensor z;  // the latent, scaled and shifted as upstream does (unless EncodeOptions::unscaled)
  // Variational families only; for the others these are undefined (defined() is false).
  Tensor mean;     // raw posterior mean
  Tensor logvar;   // raw posterior log-variance, clamped to [-30, 20]
  Tensor moments;  // the encoder's raw output [mean | logvar] before clamping
};

struct ParameterInfo {
  std::string name;
  Shape shape;
};

struct ModelInfo {
  std::string family;        // "ae2d", "hunyuan", "dcae"
  std::string preset;        // preset name, empty for a custom config
  std::string config_json;   // the resolved model_args as compact JSON
  bool variational = false;  // has a posterior (mean/logvar)
  int64_t in_channels = 0;
  int64_t latent_channels = 0;
  int64_t time_ratio = 1;  // frames per latent frame
  // Latent frame 0 encodes frame 0 alone (causal 3D VAEs): valid clips have 1 + time_ratio * k
  // frames. Otherwise clips have a multiple of time_ratio frames (or 1, an image).
  bool causal_time = false;
  int64_t spatial_ratio = 1;  // pixels per latent pixel
  // The latent's scaling: z = scale_factor * (latent - shift_factor) for variational families,
  // z = latent / scale_factor for the DC-AE (its optional scaling_factor); 1 and 0 when the
  // config sets none.
  double scale_factor = 1.0;
  double shift_factor = 0.0;
  std::vector<ParameterInfo> parameters;
  int64_t parameter_count = 0;
  // Parameters only one direction reads (the encoder's and quant_conv's; the decoder's and
  // post_quant_conv's, by their checkpoint names); the rest are read by both. A process holds a
  // direction's weights once it has run it, so plans count those of the direction they run.
  int64_t encoder_parameter_count = 0;
  int64_t decoder_parameter_count = 0;
  std::vector<std::string> warnings;  // load warnings, e.g. unexpected checkpoint tensors
};

// What running a given input would do, computed without running the model.
struct RunPlan {
  Shape input;
  Shape output;
  std::vector<std::string> notes;  // tiles that will run and similar facts, one line each
  int64_t weight_bytes = 0;
  int64_t peak_activation_bytes = 0;
  int64_t scratch_bytes = 0;
  int64_t estimated_peak_bytes = 0;
  int64_t conv_flops = 0;  // multiply-add FLOPs of the convolutions (2 per MAC)
  // What the convolution primitives really run: fewer than conv_flops where a fused kernel does
  // less than the direct convolution (the upsample-convolutions' 2-tap phase kernels).
  int64_t executed_conv_flops = 0;
  int64_t largest_activation_bytes = 0;  // the largest single tensor the run allocates
  int64_t tiles = 1;                     // tiles the run codes (1: untiled)
};

// The plan Model::fit_encode / fit_decode chose to fit a memory cap.
struct FittedPlan {
  RunPlan plan;
  // The tiling that gives it, for EncodeOptions::tiling; unset: the config's own fits.
  std::optional<TilingOptions> tiling;
  std::string summary;  // one line: the cap, what was chosen, the estimated peaks
};

class ModelImpl;

class Model {
 public:
  static Model load(const LoadOptions& options);
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const ModelInfo& info() const;
  EncodeResult encode(const Tensor& x, const EncodeOptions& options = {}) const;
  Tensor decode(const Tensor& z, const DecodeOptions& options = {}) const;
  // The output shape of an encode (decode) of `input`, checked as encode (decode) checks it
  // before computing: throws Error, saying why, for a shape the model does not take.
  Shape encoded_shape(const Shape& input) const;
  Shape decoded_shape(const Shape& latent) const;
  // The same numbers as encode and decode, with the clip never whole in memory where the tiling
  // allows: encode_streamed reads the input's frames from `read` as its tiles need them, and
  // decode_streamed hands the output's frames to `write` as they are finished. With temporal
  // tiles (or the 2D AE, which codes frame by frame) memory does not grow with the clip's
  // length; otherwise the whole clip is read (or written) at once.
  EncodeResult encode_streamed(const Shape& input, const FrameReader& read,
                               const EncodeOptions& options = {}) const;
  void decode_streamed(const Tensor& z, const FrameWriter& write,
                       const DecodeOptions& options = {}) const;

  // Shapes and memory of an encode (or decode) of `input`, the clip's frames counted as `io`
  // says; throws Error on an invalid shape.
  RunPlan plan_encode(const Shape& input, const std::optional<TilingOptions>& tiling = std::nullopt,
                      ClipIo io = ClipIo::kWhole) const;
  RunPlan plan_decode(const Shape& input, const std::optional<TilingOptions>& tiling = std::nullopt,
                      ClipIo io = ClipIo::kWhole) const;

  // The plan for `input` whose whole process fits in `max_memory` bytes of resident memory (its
  // estimated peak, what the process held when the model was loaded (code, libraries) and
  // runtime_allowance_bytes() (vvae/memory.hpp) for what a first run adds): the
  // config's tiling when it fits (upstream's tiles stay the default), else the fitting tiling
  // with the fewest tiles (spatial and temporal tiles of the tiled families). Throws Error,
  // naming the smallest cap that would do, when nothing fits.
  // `io`: whether the run holds the whole clip or streams it (its plans count either).
  FittedPlan fit_encode(const Shape& input, int64_t max_memory, ClipIo io = ClipIo::kWhole) const;
  FittedPlan fit_decode(const Shape& input, int64_t max_memory, ClipIo io = ClipIo::kWhole) const;
  // The process's resident memory once the model was loaded, counted under a cap (fit_encode).
  int64_t baseline_bytes() const;
  // Bytes of the weights only the encoder (or only the decoder) reads that no run has brought
  // into memory yet: what a plan of the other direction leaves out, and what a process that
  // runs this direction first (reconstruct: encode, then decode) holds beside the other's run.
  int64_t weights_not_yet_resident(bool encoder) const;

 private:
  explicit Model(std::unique_ptr<ModelImpl> impl);
  std::unique_ptr<ModelImpl> impl_;
};

// A draw from the Gaussian posterior (mean, logvar), as encode with EncodeOptions::sample and
// `seed` draws it before scaling: the same seed gives the same values on any thread count.
Tensor sample_posterior(const Tensor& mean, const Tensor& logvar, uint64_t seed);

// Presets known to vvae (`flux-ae`, ...).
std::vector<std::string> preset_names();

std::string version();

}  // namespace vvae
