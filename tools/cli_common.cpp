#include "cli_common.hpp"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

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
      ->check(CLI::NonNegativeNumber);
  cmd.add_flag("-q,--quiet", o.quiet, "Print nothing but errors");
  cmd.add_option("--precision", o.load.compute.precision,
                 "Convolution precision: fp32 (exact, default) or bf16 (faster, ~1e-2 error)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, Precision>{
          {"fp32", Precision::kFp32}, {"bf16", Precision::kBf16}}));
  cmd.add_option("--conv-algo", o.load.compute.conv_algorithm,
                 "Convolution algorithm: direct (default) or winograd (2-D 3x3, fp32)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, ConvAlgorithm>{
          {"direct", ConvAlgorithm::kDirect}, {"winograd", ConvAlgorithm::kWinograd}}));
}

void add_tiling_options(CLI::App& cmd, TilingOptions& t) {
  cmd.add_option("--tile-size", t.tile_size, "Spatial tile size in pixels (overrides the config)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--tile-frames", t.tile_frames, "Temporal tile length in frames")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--tile-overlap", t.overlap, "Tile overlap fraction in [0, 1)")
      ->check(CLI::Range(0.0, 0.999));
  cmd.add_flag("--no-tiling", t.disable, "Run untiled whatever the config says");
  cmd.add_flag("--no-spatial-tiling", t.no_spatial,
               "No spatial tiles (temporal tiling as configured)");
  cmd.add_flag("--no-temporal-tiling", t.no_temporal,
               "No temporal tiles (Open-Sora's text-to-video setting: spatial tiling only)");
  cmd.add_flag("--dcae-short-tail-compat", t.dcae_short_tail_compat,
               "DC-AE: decode a last temporal tile of one latent frame to one frame, as upstream "
               "(the clip comes back short) instead of merging it into the previous tile");
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
  if (!name.empty()) {
    if (!file.contains(name)) fail("'", file.path(), "' has no tensor '", name, "'");
    return file.load(name);
  }
  if (file.contains(preferred)) return file.load(preferred);
  const auto names = file.names();
  if (names.size() == 1) return file.load(names[0]);
  std::string list;
  for (size_t i = 0; i < names.size() && i < 6; ++i) list += (i ? ", " : "") + names[i];
  if (names.size() > 6) list += ", ...";
  if (names.empty()) fail("'", file.path(), "' holds no tensors");
  fail("'", file.path(), "' holds ", names.size(), " tensors (", list, ") and none is named '",
       preferred, "': pick one with --tensor NAME");
}

void check_output_path(const std::string& path) {
  if (path.empty()) fail("no output path given (--output FILE)");
  if (fs::is_directory(path)) fail("output '", path, "' is a directory");
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent))
    fail("cannot write '", path, "': folder '", parent.string(), "' does not exist");
  if (::access(parent.c_str(), W_OK) != 0)
    fail("cannot write '", path, "': folder '", parent.string(), "' is not writable");
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
