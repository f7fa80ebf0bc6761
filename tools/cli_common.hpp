#pragma once
// Pieces shared by the vvae subcommands: model-loading options, reading the input tensor,
// checking the output path early, and formatting.

#include <CLI/CLI.hpp>
#include <string>

#include "io/safetensors.hpp"
#include "vvae/model.hpp"

namespace vvae::cli {

struct CommonOptions {
  LoadOptions load;
  int threads = 0;
  bool quiet = false;
};

// --model, --weights, --config, --preset, --strict, --threads, --quiet
void add_model_options(CLI::App& cmd, CommonOptions& o);
// --tile-size, --tile-frames, --tile-overlap, --no-tiling, --dcae-short-tail-compat
void add_tiling_options(CLI::App& cmd, TilingOptions& t);

// Loads the model, applies --threads and prints load warnings to stderr.
Model load_model(const CommonOptions& o);

// The tensor `name` if given, else `preferred` if present, else the file's only tensor.
Tensor read_input_tensor(const SafetensorsFile& file, const std::string& name,
                         const std::string& preferred);

// Fails early (before any work) when `path` cannot be created.
void check_output_path(const std::string& path);

Shape parse_shape(const std::string& text);  // "1,3,17,256,256"
std::string format_bytes(int64_t bytes);     // "1.5 GiB"
std::string format_count(int64_t n);         // "83,819,683"

}  // namespace vvae::cli
