// vvae's resource limits (issue 17): absurd shapes, frame counts, intervals, sizes and configs
// are refused at once, naming the limit; NaN and infinity in inputs and weights are refused; the
// fuzz findings give one clear error each.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>

#include "io/config.hpp"
#include "media/frames.hpp"
#include "models/family.hpp"
#include "models/tiling.hpp"
#include "test_util.hpp"
#include "vvae/error.hpp"
#include "vvae/limits.hpp"
#include "vvae/model.hpp"
#include "vvae/safetensors.hpp"

namespace vvae::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs fn, which must throw vvae::Error with a one-line message containing `expected`, within
// `seconds`.
template <typename Fn>
void expect_refused(Fn fn, const std::string& expected, double seconds = 5.0) {
  const auto start = Clock::now();
  try {
    fn();
    ADD_FAILURE() << "no error (expected one mentioning '" << expected << "')";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(expected), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  EXPECT_LT(seconds_since(start), seconds);
}

Model preset_without_weights(const std::string& preset) {
  LoadOptions o;
  o.model = preset;
  o.without_weights = true;
  return Model::load(o);
}

TEST(Limits, CheckedArithmetic) {
  EXPECT_EQ(limits::checked_mul(int64_t{1} << 31, int64_t{1} << 31, "x"), int64_t{1} << 62);
  expect_refused([] { limits::checked_mul(int64_t{1} << 32, int64_t{1} << 32, "tiles"); },
                 "overflows 64-bit");
  expect_refused([] { limits::checked_mul(-1, 2, "tiles"); }, "negative");
  expect_refused([] { limits::checked_add(std::numeric_limits<int64_t>::max(), 1, "bytes"); },
                 "overflows 64-bit");
  EXPECT_EQ(limits::checked_numel({2, 3, 4}, "t"), 24);
  EXPECT_EQ(limits::checked_numel({0, int64_t{1} << 62, 4}, "t"), 0);
  // 2^63 elements would wrap to a negative count.
  expect_refused(
      [] {
        limits::checked_numel({int64_t{1} << 32, int64_t{1} << 31}, "t");
      },
      "elements");
  limits::check_clip_limits({1, 3, 17, 256, 256}, "the input");
  expect_refused(
      [] {
        limits::check_clip_limits({1, 3, 9999997, 64, 64}, "the input");
      },
      "frames 9999997; vvae's limit is 65536");
  expect_refused(
      [] {
        limits::check_clip_limits({1, 3, 1, 99992, 64}, "the input");
      },
      "height 99992; vvae's limit is 16384");
  expect_refused(
      [] {
        limits::check_clip_limits({1024, 3, 65536, 16384, 16384}, "the input");
      },
      "elements");
  const std::string shallow = "[[[]]]";
  limits::check_json_depth(shallow.data(), shallow.data() + shallow.size(), "text");
  const std::string deep(100, '[');
  expect_refused([&] { limits::check_json_depth(deep.data(), deep.data() + deep.size(), "t"); },
                 "deeper than 64");
  const std::string quoted = "[\"" + deep + "\"]";  // brackets inside a string do not nest
  limits::check_json_depth(quoted.data(), quoted.data() + quoted.size(), "text");
}

TEST(Limits, TensorSizesCannotOverflow) {
  expect_refused([] { Tensor::empty({int64_t{1} << 32, int64_t{1} << 32}); }, "elements");
  expect_refused([] { Tensor::empty({1, 3, 9999997, 99992, 99992}); }, "elements");
}

// issue 17: `vvae info --model hunyuan-vae --input-shape 1,3,9999997,99992,99992` ran for
// 300 s; now every planning path refuses at once with the limit it exceeds.
TEST(Limits, AbsurdShapesAreRefusedAtOnce) {
  const Model hunyuan = preset_without_weights("hunyuan-vae");
  expect_refused(
      [&] {
        hunyuan.plan_encode({1, 3, 9999997, 99992, 99992});
      },
      "frames 9999997; vvae's limit is 65536");
  expect_refused([&] { hunyuan.plan_decode({1, 16, 9999997, 99992, 99992}); }, "vvae's limit");
  expect_refused([&] { hunyuan.plan_encode({100000, 3, 1, 64, 64}); }, "batch size 100000");
  // Within every dimension's limit but not their product.
  expect_refused([&] { hunyuan.plan_encode({1, 3, 65533, 16384, 16384}); }, "elements");
  // A latent whose decoded clip would pass the limits.
  expect_refused(
      [&] {
        hunyuan.plan_decode({1, 16, 1, 4096, 4096});
      },
      "the decoded clip [1, 3, 1, 32768, 32768] has height 32768");
  // The same refusals before a real run allocates anything.
  const Model ae2d = preset_without_weights("flux-ae");
  expect_refused([&] { ae2d.plan_encode({1, 3, 1, 99992, 99992}); }, "height 99992");
}

TEST(Limits, TileCountsAreBounded) {
  TilingSpec s;
  s.spatial = true;
  s.tile = 2;
  s.out_tile = 2;
  s.overlap = 0.5;  // a step of 1: one tile per pixel
  const ShapeRule identity = [](const Shape& x) { return x; };
  expect_refused(
      [&] {
        tiled_output_shape({1, 3, 1, 4096, 4096}, s, identity);
      },
      "takes 16777216 tiles; vvae's limit is 65536");
  TilingSpec t;
  t.temporal = true;
  t.tile_frames = 2;
  t.out_tile_frames = 2;
  t.overlap = 0.5;
  t.spatial = true;
  t.tile = 64;
  t.out_tile = 64;
  expect_refused(
      [&] {
        tiled_output_shape({1, 3, 60000, 1024, 1024}, t, identity);
      },
      "tiles; vvae's limit is 65536");
}

// A clip within every limit plans in about the time of one frame (ae2d codes frame by frame) or
// of the tiles it runs, not one dry run per frame.
TEST(Limits, LongClipsPlanQuickly) {
  const Model ae2d = preset_without_weights("flux-ae");
  const auto start = Clock::now();
  const RunPlan plan = ae2d.plan_encode({2, 3, 4096, 64, 64});
  EXPECT_LT(seconds_since(start), 10.0);
  EXPECT_EQ(plan.output, (Shape{2, 16, 4096, 8, 8}));
  // FLOPs grow with the frame count exactly.
  const RunPlan one = ae2d.plan_encode({1, 3, 1, 64, 64});
  EXPECT_EQ(plan.conv_flops, one.conv_flops * 2 * 4096);
  EXPECT_EQ(plan.executed_conv_flops, one.executed_conv_flops * 2 * 4096);
  // A batch codes one sample at a time: planning it costs one sample too.
  const Model hunyuan = preset_without_weights("hunyuan-vae");
  const auto batch_start = Clock::now();
  const RunPlan batch = hunyuan.plan_encode({256, 3, 1, 512, 512});
  EXPECT_LT(seconds_since(batch_start), 10.0);
  EXPECT_EQ(batch.conv_flops, hunyuan.plan_encode({1, 3, 1, 512, 512}).conv_flops * 256);
}

TEST(Limits, FrameSelectionIsBounded) {
  FrameRequest r;
  r.frame_interval = std::numeric_limits<int64_t>::max();
  expect_refused([&] { frame_sampling(30, r); }, "--frame-interval");
  r = {};
  r.num_frames = int64_t{1} << 40;
  expect_refused([&] { frame_sampling(30, r); }, "--num-frames");
  r = {};
  r.fps_max = 1e-300;
  expect_refused([&] { frame_sampling(30, r); }, "--fps-max");
  r = {};
  r.fps_max = 1e-3;
  expect_refused([&] { frame_sampling(1e9, r); }, "sampling interval");
  r = {};
  r.fps_max = 16;
  r.frame_interval = limits::kMaxFrameInterval;
  expect_refused([&] { frame_sampling(60, r); }, "sampling interval");
  expect_refused([] { FrameSelector(int64_t{1} << 40, 1); }, "the number of frames");
  // Within the limits nothing changes: 60 fps at fps_max 16 samples every 4th, times 3.
  r = {};
  r.fps_max = 16;
  r.frame_interval = 3;
  EXPECT_EQ(frame_sampling(60, r).interval, 12);
}

// --- configs -----------------------------------------------------------------------------------

std::string write_config(const std::string& name, const Json& config) {
  const std::string path = temp_path(name + ".json");
  write_bytes(path, config.dump());
  return path;
}

void plan_small_clip(const std::string& config_path) {
  LoadOptions o;
  o.config = config_path;
  o.without_weights = true;
  const Model m = Model::load(o);
  const RunPlan enc = m.plan_encode({1, 3, 1, 32, 32});
  m.plan_decode(enc.output);
}

// Each fuzz finding (tests/data/fuzz/config) gives one clear error, at once.
TEST(FuzzRegression, ModelConfigsGiveOneError) {
  const std::map<std::string, std::string> expected = {
      {"crash-c59b8706199be167366f7eb4f3bb33c1b6b18598", "model_args.ch = 0 is out of range"},
      {"crash-d21befe53ce19259b7297e36857b29ad05afb939",
       "model_args.ch = 1000000000 is out of range"},
      {"timeout-edb4ed4b001cf1e2f5cc38021c6dd696ce5d35fd",
       "model_args.num_res_blocks = 100000000 is out of range"},
      // A key holding a line break: the message must stay one line, the break escaped.
      {"crash-58aac8c212e514be6bf21b00a967c37dd7a82b66",
       "unknown key 'FFFFFFFFFFFFFFFFFFFFFnot d\\normtFFFFFFFFFFFFFFFFFFFFFFFTTmple'"}};
  size_t seen = 0;
  for (const auto& entry : fs::directory_iterator(data_path("fuzz/config"))) {
    const std::string name = entry.path().filename().string();
    SCOPED_TRACE(name);
    const auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << "a new finding: add its expected error here";
    expect_refused([&] { plan_small_clip(entry.path().string()); }, it->second);
    ++seen;
  }
  EXPECT_EQ(seen, expected.size());
}

Json ae2d_config(const Json& args) {
  Json base = {{"resolution", 32}, {"in_channels", 3},       {"ch", 32},
               {"out_ch", 3},      {"ch_mult", {1, 2}},      {"num_res_blocks", 1},
               {"z_channels", 4},  {"scale_factor", 0.3611}, {"shift_factor", 0.1159}};
  for (const auto& [k, v] : args.items()) base[k] = v;
  return {{"family", "ae2d"}, {"model_args", base}};
}

TEST(Limits, ConfigValuesAreBounded) {
  plan_small_clip(write_config("ae2d_ok", ae2d_config(Json::object())));
  expect_refused(
      [] {
        plan_small_clip(write_config("neg", ae2d_config({{"ch", -32}})));
      },
      "model_args.ch = -32 is out of range: it must be in [1, 16384]");
  expect_refused(
      [] {
        plan_small_clip(write_config("huge", ae2d_config({{"z_channels", 1ull << 63}})));
      },
      "model_args.z_channels = 9223372036854775808 is out of range");
  expect_refused(
      [] {
        plan_small_clip(write_config("wide", ae2d_config({{"ch_mult", {1, 1024}}})));
      },
      "above vvae's limit of 16384 channels");
  expect_refused(
      [] {
        plan_small_clip(
            write_config("levels", ae2d_config({{"ch_mult", std::vector<int64_t>(17, 1)}})));
      },
      "model_args.ch_mult has 17 entries; vvae's limit is 16");
  // Widths within the limit whose weights together pass the parameter limit.
  expect_refused(
      [] {
        plan_small_clip(write_config(
            "params", ae2d_config({{"ch", 8192}, {"ch_mult", {1, 2}}, {"num_res_blocks", 64}})));
      },
      "parameters (vvae's limit)");
  expect_refused(
      [] {
        Json c = ae2d_config(Json::object());
        c["model_args"]["scale_factor"] = 1e308 * 10;  // inf: nlohmann writes it as null
        plan_small_clip(write_config("inf", c));
      },
      "scale_factor must be a finite number");
  // Deep nesting and oversized files are refused before parsing.
  const std::string deep = temp_path("deep.json");
  write_bytes(deep, "{\"family\": \"ae2d\", \"model_args\": {\"x\": " + std::string(100000, '[') +
                        std::string(100000, ']') + "}}");
  expect_refused([&] { plan_small_clip(deep); }, "deeper than 64 levels");
  const std::string big = temp_path("big.json");
  write_bytes(big, "{\"family\": \"ae2d\", \"pad\": \"" + std::string(17 << 20, 'x') + "\"}");
  expect_refused([&] { plan_small_clip(big); }, "larger than 16 MiB");
  // hunyuan and dcae read their integers within limits too.
  expect_refused(
      [] {
        plan_small_clip(write_config(
            "hy", {{"family", "hunyuan"}, {"model_args", {{"layers_per_block", 1000}}}}));
      },
      "model_args.layers_per_block = 1000 is out of range: it must be in [1, 64]");
  expect_refused(
      [] {
        Json args = find_preset("dc-ae-f32t4c128")->args;
        args["spatial_tile_size"] = 1 << 20;
        plan_small_clip(write_config("dc", {{"family", "dcae"}, {"model_args", args}}));
      },
      "model_args.spatial_tile_size = 1048576 is out of range");
}

// --- NaN and infinity ----------------------------------------------------------------------------

TEST(NonFinite, InputsAndLatentsAreRefused) {
  LoadOptions o;
  o.model = data_path("golden/ae2d_small");
  const Model model = Model::load(o);
  const SafetensorsFile io = SafetensorsFile::open(data_path("golden/ae2d_small/io.safetensors"));
  Tensor x = io.load("x").clone();
  EXPECT_EQ(count_non_finite(x), 0);
  x.data()[5] = std::nanf("");
  x.data()[9] = INFINITY;
  EXPECT_EQ(count_non_finite(x), 2);
  expect_refused([&] { model.encode(x); }, "holds 2 NaN or infinite values");
  Tensor z = io.load("z").clone();
  z.data()[0] = -INFINITY;
  expect_refused([&] { model.decode(z); }, "the latent [");
}

TEST(NonFinite, CheckpointTensorsAreRefused) {
  const std::string dir = data_path("golden/ae2d_small");
  const SafetensorsFile file = SafetensorsFile::open(dir + "/weights.safetensors");
  std::vector<NamedTensor> tensors;
  for (const auto& name : file.names()) {
    Tensor t = file.load(name).clone();
    if (name == "decoder.conv_in.weight") t.data()[3] = std::nanf("");
    tensors.push_back({name, t});
  }
  const std::string weights = temp_path("nan_weights.safetensors");
  save_safetensors(weights, tensors);
  LoadOptions o;
  o.config = dir + "/config.json";
  o.weights = weights;
  expect_refused([&] { Model::load(o); },
                 "1 holding NaN or infinite values (decoder.conv_in.weight (1 of ");
}

}  // namespace
}  // namespace vvae::test
