#pragma once
// Pieces shared by the vvae subcommands: model-loading options, clip options, reading the input
// tensor, checking output paths early, writing frames by output kind, and formatting.

#include <CLI/CLI.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "vvae/clip.hpp"
#include "vvae/files.hpp"
#include "vvae/limits.hpp"
#include "vvae/model.hpp"
#include "vvae/safetensors.hpp"
#include "vvae/video.hpp"

namespace vvae::cli {

// --threads accepts 0 (all cores) to this.
inline constexpr int kMaxThreads = 4096;
// --fps, --fps-max accept up to this.
inline constexpr double kMaxFps = 1e6;

struct CommonOptions {
  LoadOptions load;
  int threads = 0;
  bool quiet = false;
  std::string max_memory;  // --max-memory SIZE (encode, decode); empty: no cap
};

// Thrown to leave with a given exit status after the output was printed (no error line).
struct ExitStatus {
  int code = 0;
};

// A check that a number lies in [lo, hi], whose message prints the bounds as they are written
// ("--threads: must be in [0, 4096], got -1"), not CLI11's 300-digit defaults.
template <typename T>
CLI::Validator in_range(T lo, T hi) {
  std::ostringstream bounds;
  bounds << "[" << lo << ", " << hi << "]";
  return CLI::Validator(
      [lo, hi, range = bounds.str()](std::string& text) -> std::string {
        T value{};
        if (!CLI::detail::lexical_cast(text, value)) return "'" + text + "' is not a number";
        if (!(value >= lo && value <= hi)) return "must be in " + range + ", got " + text;
        return "";
      },
      "in " + bounds.str());
}

// --model, --weights, --config, --preset, --strict, --threads, --quiet
void add_model_options(CLI::App& cmd, CommonOptions& o);
// --tile-size, --tile-frames, --tile-overlap, --no-tiling, --no-spatial-tiling,
// --no-temporal-tiling, --model-arg KEY=VALUE, --dcae-short-tail-compat
void add_tiling_options(CLI::App& cmd, LoadOptions& load);

// How video and image inputs become clips: --num-frames, --frame-interval, --fps-max,
// --resolution, --size.
struct ClipCliOptions {
  ClipOptions clip;
  std::string size;
  // Parses --size into `clip`; call before use.
  const ClipOptions& resolve();
};
void add_clip_options(CLI::App& cmd, ClipCliOptions& o);

// Loads the model, applies --threads and prints load warnings to stderr.
Model load_model(const CommonOptions& o);

// The tensor `name` if given, else `preferred` if present, else the file's only tensor.
Tensor read_input_tensor(const SafetensorsFile& file, const std::string& name,
                         const std::string& preferred);

// The files loading the model reads (--model's files, --weights, --config).
InputFiles model_input_files(const LoadOptions& load);
// The checkpoint files among them (a model folder's weights.safetensors, a checkpoint given as
// --model, --weights): their content is part of a latent cache's keys.
std::vector<std::string> model_weights_files(const LoadOptions& load);

// Fails early (before any work) when `path` cannot be created, or is one of `inputs` (under
// any name: symlinks and hard links count).
void check_output_path(const std::string& path, const InputFiles& inputs);
// The same for a --frames folder: it must be new or empty, or hold a frame set vvae wrote (and
// `overwrite` be given), and hold none of `inputs`.
void check_frames_folder(const std::string& path, const InputFiles& inputs, bool overwrite);
// --max-memory SIZE: the cap on the process's resident memory that picks the tiling.
void add_memory_option(CLI::App& cmd, CommonOptions& o);
// The tiling to run an encode (or decode) of `input` with: under --max-memory the plan that
// fits (one line says which, unless --quiet), else the config's; either way the plan must fit
// the machine's memory now.
// `io` says whether the run holds the whole clip or streams it; `io_bytes` is what the run holds
// beside the model's plan (a video writer), taken off the cap.
std::optional<TilingOptions> fitted_tiling(const Model& model, const Shape& input, bool encode,
                                           const CommonOptions& o, ClipIo io = ClipIo::kWhole,
                                           int64_t io_bytes = 0);

// What an output path holds, by its extension (or --frames).
enum class OutputKind { tensor, video, image, frames };
// Fails with the accepted kinds when the extension is unknown.
OutputKind output_kind(const std::string& path, bool frames_flag);
// Writes 8-bit frames as a video, a PNG (one frame) or a folder of PNGs.
void write_frames(const std::string& path, OutputKind kind, const RgbFrames& frames, double fps,
                  int crf, bool overwrite);

void warn(const std::string& message);  // "vvae: warning: ..." on stderr
// Warns (unless quiet) with the count when a result holds NaN or infinite values: the inputs
// were finite, so the model overflowed.
void warn_non_finite(const Tensor& t, const std::string& what, bool quiet);
// The same for `bad` such values counted over a tensor of `shape` (a streamed run's parts).
void warn_non_finite_count(int64_t bad, const Shape& shape, const std::string& what, bool quiet);
// Prints a clip's warnings (stderr) and, unless quiet, what was done to it (stdout).
void report_clip(const Clip& clip, bool quiet);

Shape parse_shape(const std::string& text);  // "1,3,17,256,256"
std::string format_bytes(int64_t bytes);     // "1.5 GiB"
std::string format_count(int64_t n);         // "83,819,683"
std::string format_seconds(double s);        // "0.42 s", "1:05", "1:02:03"

}  // namespace vvae::cli
