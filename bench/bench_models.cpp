// Model-level benchmark: one full-size preset with random weights, one direction, one shape.
//
//   vvae_bench_models flux-ae decode 1,3,1,256,256 [--repeat 3] [--threads 2] [--smoke]
//
// Prints one JSON line: median seconds, convolution GFLOP (counted from the graph by a dry
// run), GFLOP/s, percent of the measured FMA peak, peak RSS. The shape is always the clip's
// (B, C, T, H, W); decode benchmarks decode that clip's latent. --smoke runs a tiny model
// (the bundled test model) once, to check the runner itself.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "fma_peak.hpp"
#include "models/family.hpp"
#include "vvae/model.hpp"

namespace {

using namespace vvae;

Shape parse(const std::string& text) {
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

int64_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

int run(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: vvae_bench_models PRESET|MODEL_DIR encode|decode B,C,T,H,W [--repeat N] "
                 "[--threads N] [--smoke]\n";
    return 2;
  }
  const std::string model_name = argv[1], direction = argv[2];
  const Shape clip = parse(argv[3]);
  int repeat = 3, threads = 2;
  bool smoke = false;
  for (int i = 4; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--repeat" && i + 1 < argc)
      repeat = std::stoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc)
      threads = std::stoi(argv[++i]);
    else if (a == "--smoke")
      smoke = true;
  }
  set_num_threads(threads);

  LoadOptions load;
  std::string weights;
  if (const Preset* preset = find_preset(model_name)) {
    weights =
        (std::filesystem::temp_directory_path() / ("vvae_bench_" + model_name + ".safetensors"))
            .string();
    if (!std::filesystem::exists(weights)) write_random_checkpoint(*preset, weights, 1);
    load.model = model_name;
    load.weights = weights;
  } else {
    load.model = model_name;
  }
  const Model model = Model::load(load);
  const bool decode = direction == "decode";
  const RunPlan enc_plan = model.plan_encode(clip);
  const RunPlan plan = decode ? model.plan_decode(enc_plan.output) : enc_plan;
  const Tensor input = random_clip(plan.input);

  std::vector<double> seconds;
  const int runs = smoke ? 1 : repeat + 1;  // the first run warms caches and packs weights
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    if (decode)
      model.decode(input);
    else
      model.encode(input);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r > 0 || smoke) seconds.push_back(s);
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  const double peak = smoke ? 0.0 : bench::measure_fma_peak_gflops(threads);
  const double gflop = static_cast<double>(plan.conv_flops) / 1e9;
  std::printf(
      "{\"model\": \"%s\", \"direction\": \"%s\", \"input\": \"%s\", \"threads\": %d, "
      "\"seconds\": %.4f, \"conv_gflop\": %.2f, \"gflops\": %.1f, \"fma_peak_gflops\": %.1f, "
      "\"percent_of_peak\": %.1f, \"peak_rss_mib\": %.1f, \"planned_peak_mib\": %.1f}\n",
      model_name.c_str(), direction.c_str(), to_string(plan.input).c_str(), threads, median, gflop,
      gflop / median, peak, peak > 0 ? 100.0 * gflop / median / peak : 0.0,
      static_cast<double>(peak_rss_bytes()) / 1048576.0,
      static_cast<double>(plan.estimated_peak_bytes) / 1048576.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "vvae_bench_models: error: " << e.what() << "\n";
    return 1;
  }
}
