// Model-level benchmark: one full-size preset with random weights, one direction, one shape.
//
//   vvae_bench_models flux-ae decode 1,3,1,256,256 [--repeat 3] [--threads 2] [--smoke]
//                     [--plan-only] [--profile] [--precision fp32|bf16]
//                     [--conv-algo auto|winograd|direct] [--no-tiling] [--tile-frames N]
//                     [--tile-size PX] [--check-mode]
//
// Prints one JSON line: median seconds, seconds inside oneDNN convolutions in that run,
// convolution GFLOP (counted from the graph by a dry run), GFLOP/s, percent of the measured FMA
// peak, peak RSS and the planned memory (weights, peak live activations, the largest single
// activation, oneDNN's largest scratchpad) and the process's RSS before loading the model. The
// shape is always the clip's (B, C, T, H, W); decode benchmarks decode that clip's latent. A model
// directory may stand for the preset; --smoke runs once, to check the runner itself.
//
// A mode this CPU cannot run (bf16 without AVX512-BF16, Winograd without AVX-512, or either
// under VVAE_MAX_ISA) is not run: the line is {"model": ..., "mode": ..., "skipped": "<why>"}
// and the exit status 77 (ctest's and the runner's "skipped"). --check-mode only answers that
// question: {"mode": ..., "available": true} and status 0, or the skipped line and 77.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "core/random.hpp"
#include "fma_peak.hpp"
#include "models/family.hpp"
#include "ops/conv.hpp"
#include "vvae/memory.hpp"
#include "vvae/model.hpp"

namespace {

using namespace vvae;

Shape parse_shape(const std::string& text) {
  Shape s;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t comma = text.find(',', pos);
    s.push_back(std::stoll(text.substr(pos, comma - pos)));
    pos = comma == std::string::npos ? text.size() : comma + 1;
  }
  return s;
}

Tensor random_clip(const Shape& shape) {
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = 2.0f * uniform_at(7, static_cast<uint64_t>(i)) - 1.0f;
  return t;
}

// The preset's random checkpoint, written by a child process: the writer's buffers would count
// in this process's peak RSS, and the first run of each preset on a machine measured up to 1.8x
// the peak of the runs after it (DC-AE encode 1810 MiB against 1134). Called before any parallel
// region, as a child forked from a process with OpenMP threads could not start its own.
void write_checkpoint_apart(const Preset& preset, const std::string& path) {
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    try {
      write_random_checkpoint(preset, path, 1);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "vvae_bench_models: %s\n", e.what());
      _exit(1);
    }
    _exit(0);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("could not write the random checkpoint " + path);
}

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

struct Options {
  std::string model, direction;
  Shape clip;
  int repeat = 3, threads = 2;
  bool smoke = false;
  bool plan_only = false;   // the planned FLOPs and memory, no run
  bool profile = false;     // one more run, timed per operation and shape
  bool check_mode = false;  // only whether this CPU can run the mode
  LoadOptions load;
  std::string mode = "fp32";
};

// A JSON string literal.
std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

Options parse(int argc, char** argv) {
  if (argc < 4)
    throw std::runtime_error(
        "usage: vvae_bench_models PRESET|MODEL_DIR encode|decode B,C,T,H,W [--repeat N] "
        "[--threads N] [--smoke] [--plan-only] [--profile] [--precision fp32|bf16] "
        "[--conv-algo auto|winograd|direct] [--no-tiling] [--tile-frames N] [--tile-size PX] "
        "[--check-mode]");
  Options o;
  o.model = argv[1];
  o.direction = argv[2];
  o.clip = parse_shape(argv[3]);
  for (int i = 4; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--repeat")
      o.repeat = std::stoi(value());
    else if (a == "--threads")
      o.threads = std::stoi(value());
    else if (a == "--smoke")
      o.smoke = true;
    else if (a == "--plan-only")
      o.plan_only = true;
    else if (a == "--profile")
      o.profile = true;
    else if (a == "--check-mode")
      o.check_mode = true;
    else if (a == "--no-tiling")
      o.load.tiling.disable = true;
    else if (a == "--tile-frames")
      o.load.tiling.tile_frames = std::stoll(value());
    else if (a == "--tile-size")
      o.load.tiling.tile_size = std::stoll(value());
    else if (a == "--precision") {
      const std::string v = value();
      if (v != "fp32" && v != "bf16") throw std::runtime_error("--precision is fp32 or bf16");
      o.load.compute.precision = v == "bf16" ? Precision::kBf16 : Precision::kFp32;
    } else if (a == "--conv-algo") {
      const std::string v = value();
      if (v == "winograd")
        o.load.compute.conv_algorithm = ConvAlgorithm::kWinograd;
      else if (v == "direct")
        o.load.compute.conv_algorithm = ConvAlgorithm::kDirect;
      else if (v == "auto")
        o.load.compute.conv_algorithm = ConvAlgorithm::kAuto;
      else
        throw std::runtime_error("--conv-algo is auto, winograd or direct, not " + v);
    } else {
      throw std::runtime_error("unknown option " + a);
    }
  }
  // "fp32" and "bf16" name the default algorithm (auto); an explicit one is named after it.
  const bool bf16 = o.load.compute.precision == Precision::kBf16;
  const ConvAlgorithm algo = o.load.compute.conv_algorithm;
  const std::string algo_name = algo == ConvAlgorithm::kWinograd ? "winograd"
                                : algo == ConvAlgorithm::kDirect ? "direct"
                                                                 : "";
  o.mode = bf16 ? (algo_name.empty() ? "bf16" : "bf16+" + algo_name)
                : (algo_name.empty() ? "fp32" : algo_name);
  return o;
}

// One run with the per-operation profile on: a JSON array, most time first, each entry with its
// time, executed GFLOP/s and percent of the FMA peak (convolutions), Winograd transform time.
std::string profile_run(const Model& model, const Tensor& input, bool decode, double peak) {
  set_profiling(true);
  if (decode)
    model.decode(input);
  else
    model.encode(input);
  set_profiling(false);
  std::string out = "[";
  for (const ProfileEntry& e : take_profile()) {
    const double gflops =
        e.seconds > 0 ? static_cast<double>(e.executed_flops) / e.seconds / 1e9 : 0;
    char line[512];
    std::snprintf(line, sizeof line,
                  "%s{\"op\": \"%s\", \"shape\": \"%s\", \"calls\": %lld, \"seconds\": %.4f, "
                  "\"transform_seconds\": %.4f, \"executed_gflop\": %.2f, \"gflops\": %.1f, "
                  "\"percent_of_peak\": %.1f}",
                  out.size() > 1 ? ", " : "", e.op.c_str(), e.shape.c_str(),
                  static_cast<long long>(e.calls), e.seconds, e.transform_seconds,
                  static_cast<double>(e.executed_flops) / 1e9, gflops,
                  peak > 0 ? 100.0 * gflops / peak : 0.0);
    out += line;
  }
  return out + "]";
}

// Why this CPU cannot run the options' mode, or empty.
std::string mode_unavailable(const Options& o) {
  try {
    check_compute_mode(o.load.compute);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

int run(int argc, char** argv) {
  Options o = parse(argc, argv);
  if (const std::string why = mode_unavailable(o); !why.empty()) {
    std::printf("{\"model\": %s, \"direction\": %s, \"mode\": %s, \"skipped\": %s}\n",
                json_string(o.model).c_str(), json_string(o.direction).c_str(),
                json_string(o.mode).c_str(), json_string(why).c_str());
    return 77;
  }
  if (o.check_mode) {
    std::printf("{\"mode\": %s, \"available\": true}\n", json_string(o.mode).c_str());
    return 0;
  }
  o.load.model = o.model;
  if (const Preset* preset = find_preset(o.model)) {
    const std::string weights =
        (std::filesystem::temp_directory_path() / ("vvae_bench_" + o.model + ".safetensors"))
            .string();
    if (!std::filesystem::exists(weights)) write_checkpoint_apart(*preset, weights);
    o.load.weights = weights;
  }
  set_num_threads(o.threads);
  // The process before any model: the program and its libraries (oneDNN, FFmpeg, OpenMP).
  const double baseline_rss_mib = static_cast<double>(peak_rss_bytes()) / 1048576.0;
  const Model model = Model::load(o.load);
  const bool decode = o.direction == "decode";
  const RunPlan plan =
      decode ? model.plan_decode(model.plan_encode(o.clip).output) : model.plan_encode(o.clip);
  const double executed_gflop = static_cast<double>(plan.executed_conv_flops) / 1e9;
  const Tensor input = random_clip(plan.input);

  if (o.plan_only) {
    std::printf(
        "{\"model\": \"%s\", \"direction\": \"%s\", \"input\": \"%s\", "
        "\"conv_gflop\": %.2f, \"executed_conv_gflop\": %.2f}\n",
        o.model.c_str(), o.direction.c_str(), to_string(plan.input).c_str(),
        static_cast<double>(plan.conv_flops) / 1e9, executed_gflop);
    return 0;
  }
  std::vector<double> seconds, conv;
  const int runs = o.smoke ? 1 : o.repeat + 1;  // the first run warms caches and packs weights
  for (int r = 0; r < runs; ++r) {
    reset_conv_seconds();
    const auto start = std::chrono::steady_clock::now();
    if (decode)
      model.decode(input);
    else
      model.encode(input);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r > 0 || o.smoke) {
      seconds.push_back(s);
      conv.push_back(conv_seconds());
    }
  }
  std::string profile = "[]";
  if (o.profile)
    profile = profile_run(model, input, decode, bench::measure_fma_peak_gflops(o.threads));
  // The median run, and the convolution time of that same run.
  std::vector<size_t> order(seconds.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return seconds[a] < seconds[b]; });
  const size_t mid = order[order.size() / 2];
  const double median = seconds[mid];
  const double peak = o.smoke ? 0.0 : bench::measure_fma_peak_gflops(o.threads);
  const double gflop = static_cast<double>(plan.conv_flops) / 1e9;
  std::printf(
      "{\"model\": \"%s\", \"direction\": \"%s\", \"input\": \"%s\", \"mode\": \"%s\", "
      "\"threads\": %d, \"seconds\": %.4f, \"conv_seconds\": %.4f, \"conv_gflop\": %.2f, "
      "\"executed_conv_gflop\": %.2f, \"gflops\": %.1f, \"fma_peak_gflops\": %.1f, "
      "\"fma_peak_isa\": \"%s\", \"percent_of_peak\": %.1f, "
      "\"peak_rss_mib\": %.1f, \"planned_peak_mib\": %.1f, \"weights_mib\": %.1f, "
      "\"peak_activations_mib\": %.1f, \"largest_activation_mib\": %.1f, "
      "\"scratchpad_mib\": %.1f, \"baseline_rss_mib\": %.1f, \"profile\": %s}\n",
      o.model.c_str(), o.direction.c_str(), to_string(plan.input).c_str(), o.mode.c_str(),
      o.threads, median, conv[mid], gflop, executed_gflop, gflop / median, peak,
      bench::fma_probe_info().isa, peak > 0 ? 100.0 * gflop / median / peak : 0.0,
      static_cast<double>(peak_rss_bytes()) / 1048576.0,
      static_cast<double>(plan.estimated_peak_bytes) / 1048576.0,
      static_cast<double>(plan.weight_bytes) / 1048576.0,
      static_cast<double>(plan.peak_activation_bytes) / 1048576.0,
      static_cast<double>(plan.largest_activation_bytes) / 1048576.0,
      static_cast<double>(plan.scratch_bytes) / 1048576.0, baseline_rss_mib, profile.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    // The allocation policy the CLI and the Python module run under: without it, glibc's heap
    // would keep the blocks vvae maps itself, and the figures would not be the users'.
    vvae::return_freed_memory_promptly();
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "vvae_bench_models: error: " << e.what() << "\n";
    return 1;
  }
}
