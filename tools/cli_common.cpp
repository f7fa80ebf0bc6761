#include "cli_common.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "vvae/memory.hpp"

namespace vvae::cli {

namespace fs = std::filesystem;

void add_model_options(CLI::App& cmd, CommonOptions& o) {
  cmd.add_option("-m,--model", o.load.model,
                 "Model: a directory with config.json + weights.safetensors, a preset name, or "
                 "a .safetensors checkpoint (its preset is recognised from its tensors)");
  cmd.add_option("--weights", o.load.weights, "Checkpoint for a preset or for --config");
  cmd.add_option("--config", o.load.config, "config.json to use ({family, model_args})");
  cmd.add_option("--preset", o.load.preset, "Preset to use for a checkpoint (skips recognition)");
  cmd.add_flag("--strict", o.load.strict, "Unexpected checkpoint tensors are an error");
  cmd.add_option("--threads", o.threads, "Threads (default: all cores)")
      ->check(in_range(0, kMaxThreads));
  cmd.add_flag("-q,--quiet", o.quiet, "Print nothing but errors");
  cmd.add_option("--precision", o.load.compute.precision,
                 "Convolution precision: fp32 (exact, default) or bf16 (faster, ~1e-2 error)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, Precision>{
          {"fp32", Precision::kFp32}, {"bf16", Precision::kBf16}}));
  cmd.add_option("--conv-algo", o.load.compute.conv_algorithm,
                 "Convolution algorithm: auto (default: winograd in fp32, direct in bf16), "
                 "winograd (vvae's F(4x4,3x3) for 3x3 stride-1 convolutions, fp32) or direct "
                 "(oneDNN's direct convolutions, the reference)")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, ConvAlgorithm>{{"auto", ConvAlgorithm::kAuto},
                                               {"direct", ConvAlgorithm::kDirect},
                                               {"winograd", ConvAlgorithm::kWinograd}}));
}

void add_tiling_options(CLI::App& cmd, LoadOptions& load) {
  TilingOptions& t = load.tiling;
  cmd.add_option("--tile-size", t.tile_size, "Spatial tile size in pixels (overrides the config)")
      ->check(in_range<int64_t>(1, limits::kMaxSide));
  cmd.add_option("--tile-frames", t.tile_frames, "Temporal tile length in frames")
      ->check(in_range<int64_t>(1, limits::kMaxFrames));
  cmd.add_option("--tile-overlap", t.overlap, "Tile overlap fraction in [0, 1)")
      ->check(in_range(0.0, 0.999));
  cmd.add_flag("--no-tiling", t.disable, "Run untiled whatever the config says");
  cmd.add_flag("--no-spatial-tiling", t.no_spatial,
               "No spatial tiles (temporal tiling as configured)");
  cmd.add_flag("--no-temporal-tiling", t.no_temporal,
               "No temporal tiles (Open-Sora's text-to-video setting: spatial tiling only)");
  cmd.add_option_function<std::vector<std::string>>(
      "--model-arg",
      [&load](const std::vector<std::string>& settings) {
        for (const std::string& kv : settings) {
          const size_t eq = kv.find('=');
          if (eq == std::string::npos || eq == 0)
            fail("--model-arg ", kv, ": expected KEY=VALUE with VALUE in JSON (true, 256, ...)");
          load.model_args[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
      },
      "Set a model_args key of the family's config over its value: KEY=JSON (repeatable)");
  cmd.add_flag_callback(
      "--dcae-short-tail-compat", [&load] { load.model_args["dcae_short_tail_compat"] = "true"; },
      "DC-AE: decode a last temporal tile of one latent frame to one frame, as upstream "
      "(the clip comes back short) instead of merging it into the previous tile (the same as "
      "--model-arg dcae_short_tail_compat=true)");
}

const ClipOptions& ClipCliOptions::resolve() {
  if (!size.empty()) {
    const auto [h, w] = parse_size(size);
    clip.height = h;
    clip.width = w;
    if (!clip.resolution.empty()) fail("give --resolution or --size, not both");
  }
  return clip;
}

void add_clip_options(CLI::App& cmd, ClipCliOptions& o) {
  cmd.add_option("--num-frames", o.clip.frames.num_frames,
                 "Frames per clip, spread over num-frames x interval source frames as Open-Sora's "
                 "loader does (default: every frame at the interval)")
      ->check(in_range<int64_t>(1, limits::kMaxFrames));
  cmd.add_option("--frame-interval", o.clip.frames.frame_interval,
                 "Take every n-th frame (after --fps-max)")
      ->check(in_range<int64_t>(1, limits::kMaxFrameInterval));
  cmd.add_option("--fps-max", o.clip.frames.fps_max,
                 "Sample faster sources down to at most this rate (Open-Sora's fps_max; its VAE "
                 "configs use 16)")
      ->check(in_range(limits::kMinFpsMax, kMaxFps));
  cmd.add_option("--resolution", o.clip.resolution,
                 "resize_crop to the closest aspect-ratio bucket of 256, 360p, 512px_ar1:1, 720p, "
                 "... (256 = 256px = 256x256 pixels)");
  cmd.add_option("--size", o.size, "resize_crop to exactly HxW (multiples of the spatial ratio)");
}

Model load_model(const CommonOptions& o) {
  set_num_threads(o.threads);
  Model model = Model::load(o.load);
  const auto& warnings = model.info().warnings;
  if (!warnings.empty() && !o.quiet) {
    std::cerr << "vvae: warning: the checkpoint has " << warnings.size()
              << " tensors the model does not use:";
    for (size_t i = 0; i < warnings.size() && i < 8; ++i) std::cerr << ' ' << warnings[i];
    if (warnings.size() > 8) std::cerr << " ...";
    std::cerr << " (--strict makes this an error)\n";
  }
  return model;
}

Tensor read_input_tensor(const SafetensorsFile& file, const std::string& name,
                         const std::string& preferred) {
  return read_named_tensor(file, name, preferred);
}

InputFiles model_input_files(const LoadOptions& load) {
  InputFiles files;
  if (!load.model.empty()) {
    if (fs::is_directory(load.model)) {
      files.add((fs::path(load.model) / "config.json").string());
      files.add((fs::path(load.model) / "weights.safetensors").string());
    } else {
      files.add(load.model);
    }
  }
  files.add(load.weights);
  files.add(load.config);
  return files;
}

std::vector<std::string> model_weights_files(const LoadOptions& load) {
  std::vector<std::string> files;
  if (!load.model.empty()) {
    if (fs::is_directory(load.model))
      files.push_back((fs::path(load.model) / "weights.safetensors").string());
    else if (fs::is_regular_file(load.model))
      files.push_back(load.model);
  }
  if (!load.weights.empty()) files.push_back(load.weights);
  return files;
}

void check_output_path(const std::string& path, const InputFiles& inputs) {
  if (path.empty()) fail("no output path given (--output FILE)");
  if (fs::is_directory(path)) fail("output '", path, "' is a directory");
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent))
    fail("cannot write '", path, "': folder '", parent.string(), "' does not exist");
  if (::access(parent.c_str(), W_OK) != 0)
    fail("cannot write '", path, "': folder '", parent.string(), "' is not writable");
  inputs.check_output_file(path);
}

void check_frames_folder(const std::string& path, const InputFiles& inputs, bool overwrite) {
  if (path.empty()) fail("no output folder given");
  const FrameFolder f = check_frame_folder(path, overwrite);
  if (f.state == FrameFolder::State::absent) {
    fs::path parent = fs::path(path).parent_path();
    if (fs::path(path).filename().empty()) parent = fs::path(path).parent_path().parent_path();
    if (parent.empty()) parent = ".";
    if (!fs::is_directory(parent))
      fail("cannot write '", path, "': folder '", parent.string(), "' does not exist");
    if (::access(parent.c_str(), W_OK) != 0)
      fail("cannot write '", path, "': folder '", parent.string(), "' is not writable");
  } else if (::access(path.c_str(), W_OK) != 0) {
    fail("cannot write frames to '", path, "': the folder is not writable");
  }
  inputs.check_output_folder(path);
}

void add_memory_option(CLI::App& cmd, CommonOptions& o) {
  cmd.add_option("--max-memory", o.max_memory,
                 "Cap on the process's resident memory (e.g. 8G, 1.5GiB, 800M): when the "
                 "configured plan's estimate exceeds it, the tiling that fits with the fewest "
                 "tiles runs instead (one line says which); refused, with the smallest cap that "
                 "would do, when none fits");
}

std::optional<TilingOptions> fitted_tiling(const Model& model, const Shape& input, bool encode,
                                           const CommonOptions& o, ClipIo io, int64_t io_bytes) {
  const char* what = encode ? "encoding" : "decoding";
  const auto check = [&](const RunPlan& plan) {
    check_memory_fits(plan.estimated_peak_bytes + io_bytes, cat(what, " ", to_string(plan.input)));
  };
  if (o.max_memory.empty()) {
    check(encode ? model.plan_encode(input, std::nullopt, io)
                 : model.plan_decode(input, std::nullopt, io));
    return std::nullopt;
  }
  const int64_t cap = parse_memory_size(o.max_memory);
  if (cap <= io_bytes)
    fail(what, " ", to_string(input), ": the video writer alone takes ~", format_memory(io_bytes),
         ", above --max-memory ", format_memory(cap));
  return_freed_memory_promptly();
  const FittedPlan fit = encode ? model.fit_encode(input, cap - io_bytes, io)
                                : model.fit_decode(input, cap - io_bytes, io);
  if (!o.quiet)
    std::cout << (io_bytes > 0 ? cat("beside ~", format_memory(io_bytes), " of video writer, ")
                               : std::string())
              << fit.summary << "\n";
  check(fit.plan);
  return fit.tiling;
}

OutputKind output_kind(const std::string& path, bool frames_flag) {
  if (frames_flag) return OutputKind::frames;
  if (fs::path(path).extension() == ".safetensors") return OutputKind::tensor;
  if (is_video_output_path(path)) return OutputKind::video;
  if (is_image_output_path(path)) return OutputKind::image;
  fail("cannot tell what to write to '", path,
       "': use .safetensors (tensor), .mp4/.mkv/.mov (video), .png (one frame) or --frames DIR");
}

void write_frames(const std::string& path, OutputKind kind, const RgbFrames& frames, double fps,
                  int crf, bool overwrite) {
  switch (kind) {
    case OutputKind::video:
      write_video(path, frames, {fps, crf});
      return;
    case OutputKind::image:
      if (frames.frames != 1)
        fail("cannot write ", frames.frames, " frames to the image '", path,
             "': write a video (.mp4) or a folder of PNGs (--frames)");
      write_png(path, frames.frame(0), frames.height, frames.width);
      return;
    case OutputKind::frames:
      write_png_sequence(path, frames, overwrite);
      return;
    case OutputKind::tensor:
      break;
  }
  fail("internal: write_frames to a tensor file");
}

void warn(const std::string& message) {
  std::cerr << "vvae: warning: " << message << "\n";
}

void warn_non_finite(const Tensor& t, const std::string& what, bool quiet) {
  warn_non_finite_count(count_non_finite(t), t.shape(), what, quiet);
}

void warn_non_finite_count(int64_t bad, const Shape& shape, const std::string& what, bool quiet) {
  if (bad > 0 && !quiet)
    warn(
        cat(what, " ", to_string(shape), " holds ", bad, " NaN or infinite value",
            bad == 1 ? "" : "s", " (of ", numel(shape),
            ") from finite inputs: the model overflowed (videos show them clamped, NaN as black)"));
}

void report_clip(const Clip& clip, bool quiet) {
  for (const auto& w : clip.warnings) warn(w);
  if (quiet) return;
  const VideoInfo& v = clip.video;
  std::cout << clip.source << ": " << v.codec << " " << v.height << "x" << v.width;
  if (v.still_image) std::cout << " image";
  if (v.fps > 0) std::cout << ", " << format_fps(v.fps) << " fps";
  if (clip.source_frames > 0 && !v.still_image)
    std::cout << ", " << clip.source_frames << " frames";
  std::cout << "\n";
  for (const auto& n : clip.notes) std::cout << "  " << n << "\n";
}

std::string format_seconds(double s) {
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.2f s", s);
  } else {
    const long long t = static_cast<long long>(s + 0.5);
    if (t < 3600)
      std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
    else
      std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  }
  return buf;
}

Shape parse_shape(const std::string& text) {
  Shape shape;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != part.size() || v < 1)
      fail("bad shape '", text, "': expected positive integers B,C,T,H,W");
    shape.push_back(v);
  }
  if (shape.size() != 5) fail("bad shape '", text, "': expected 5 numbers B,C,T,H,W");
  return shape;
}

std::string format_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) v /= 1024.0, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string format_count(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace vvae::cli
