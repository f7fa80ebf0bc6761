// vvae info and vvae compare: describe a model, compare two tensors.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>

#include "cli_common.hpp"
#include "commands.hpp"
#include "vvae/safetensors.hpp"

namespace vvae::cli {
namespace {

struct InfoCommand {
  CommonOptions common;
  std::string input_shape;
  bool list_params = false;

  void add(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand(
        "info", "Describe a model: family, config, parameters, latent shape, memory estimate");
    add_model_options(*cmd, common);
    add_tiling_options(*cmd, common.load);
    cmd->add_option("--input-shape", input_shape, "Plan an encode of this clip shape: B,C,T,H,W");
    cmd->add_flag("--list-params", list_params, "List every parameter name and shape");
    cmd->callback([this] { run(); });
  }

  static void print_plan(const char* what, const RunPlan& plan) {
    std::cout << what << "  " << to_string(plan.input) << " -> " << to_string(plan.output) << "\n";
    for (const auto& note : plan.notes) std::cout << "        " << note << "\n";
    std::cout << "        peak memory ~" << format_bytes(plan.estimated_peak_bytes) << " (weights "
              << format_bytes(plan.weight_bytes) << ", activations "
              << format_bytes(plan.peak_activation_bytes) << ", oneDNN scratch "
              << format_bytes(plan.scratch_bytes) << "); convolutions "
              << static_cast<double>(plan.conv_flops) / 1e9 << " GFLOP\n";
    if (plan.estimated_peak_bytes <
        plan.weight_bytes + plan.peak_activation_bytes + plan.scratch_bytes)
      std::cout << "        (less than their sum: in a first run each layer's weights come into "
                   "memory when it first runs)\n";
  }

  void run() {
    // A bare preset, or a config given alone, needs no weights to be described.
    const LoadOptions& l = common.load;
    common.load.without_weights =
        l.weights.empty() &&
        ((l.config.empty() && find_preset_name(l.model.empty() ? l.preset : l.model)) ||
         (!l.config.empty() && l.model.empty()));
    Model model = load_model(common);
    const ModelInfo& info = model.info();
    std::cout << "family      " << info.family
              << (info.preset.empty() ? "" : " (preset " + info.preset + ")") << "\n"
              << "parameters  " << format_count(info.parameter_count) << " in "
              << info.parameters.size() << " tensors (" << format_bytes(info.parameter_count * 4)
              << " as float32)\n"
              << "latent      " << info.latent_channels << " channels, compression "
              << info.time_ratio << "x" << info.spatial_ratio << "x" << info.spatial_ratio
              << " (T x H x W), "
              << (info.variational ? "variational (z, mean, logvar)" : "deterministic (z)") << "\n"
              << "config      " << info.config_json << "\n";
    const auto kernels = kernel_report(common.load.compute);
    for (size_t i = 0; i < kernels.size(); ++i)
      std::cout << (i == 0 ? "cpu         " : "            ") << kernels[i] << "\n";
    if (list_params)
      for (const auto& p : info.parameters)
        std::cout << "  " << p.name << " " << to_string(p.shape) << "\n";
    if (!input_shape.empty()) {
      const RunPlan enc = model.plan_encode(parse_shape(input_shape));
      print_plan("encode", enc);
      print_plan("decode", model.plan_decode(enc.output));
    }
  }

  static bool find_preset_name(const std::string& name) {
    const auto names = preset_names();
    return std::find(names.begin(), names.end(), name) != names.end();
  }
};

struct CompareCommand {
  std::string a, b, tensor_a, tensor_b;

  void add(CLI::App& app) {
    CLI::App* cmd =
        app.add_subcommand("compare", "Compare two tensors: max |a-b|, relative error, PSNR");
    cmd->add_option("a", a, "First safetensors file")->required();
    cmd->add_option("b", b, "Second safetensors file")->required();
    cmd->add_option("--tensor-a", tensor_a,
                    "Tensor in the first file (default: x or its only one)");
    cmd->add_option("--tensor-b", tensor_b,
                    "Tensor in the second file (default: x or its only one)");
    cmd->callback([this] { run(); });
  }

  void run() {
    const SafetensorsFile fa = SafetensorsFile::open(a), fb = SafetensorsFile::open(b);
    const Tensor ta = read_input_tensor(fa, tensor_a, "x"),
                 tb = read_input_tensor(fb, tensor_b, "x");
    if (ta.shape() != tb.shape())
      fail("shapes differ: ", to_string(ta.shape()), " vs ", to_string(tb.shape()));
    double max_diff = 0, max_ref = 0, sq = 0;
    for (int64_t i = 0; i < ta.numel(); ++i) {
      const double d = std::abs(double{ta.data()[i]} - tb.data()[i]);
      max_diff = std::max(max_diff, d);
      max_ref = std::max(max_ref, std::abs(double{ta.data()[i]}));
      sq += d * d;
    }
    const double mse = sq / static_cast<double>(std::max<int64_t>(1, ta.numel()));
    // PSNR for signals in [-1, 1] (peak-to-peak 2).
    const double psnr = mse > 0 ? 10.0 * std::log10(4.0 / mse) : INFINITY;
    std::cout << "shape " << to_string(ta.shape()) << "  max|a-b| " << max_diff
              << "  max|a-b|/max|a| " << (max_ref > 0 ? max_diff / max_ref : 0.0) << "  mse " << mse
              << "  psnr(range 2) " << psnr << " dB\n";
  }
};

}  // namespace

void add_info_command(CLI::App& app) {
  static InfoCommand command;
  command.add(app);
}

void add_compare_command(CLI::App& app) {
  static CompareCommand command;
  command.add(app);
}

}  // namespace vvae::cli
