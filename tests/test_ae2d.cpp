// The 2D AutoEncoder against Open-Sora's golden vectors, its checkpoint handling and the
// full-size flux-ae preset.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <regex>

#include <nlohmann/json.hpp>
#include "core/memory_stats.hpp"
#include "io/half.hpp"
#include "models/family.hpp"
#include "test_util.hpp"
#include "vvae/error.hpp"
#include "vvae/model.hpp"
#include "vvae/safetensors.hpp"

namespace vvae::test {
namespace {

namespace fs = std::filesystem;

const std::string kCase = "golden/ae2d_small";

Model load_dir(const std::string& dir) {
  LoadOptions o;
  o.model = data_path(dir);
  return Model::load(o);
}

SafetensorsFile golden_io() {
  return SafetensorsFile::open(data_path(kCase + "/io.safetensors"));
}

TEST(Ae2dParity, EveryGoldenTensor) {
  const Model model = load_dir(kCase);
  const SafetensorsFile io = golden_io();
  const EncodeResult r = model.encode(io.load("x"));
  EXPECT_TRUE(close(r.moments, io.load("moments")));
  EXPECT_TRUE(close(r.mean, io.load("mean")));
  EXPECT_TRUE(close(r.logvar, io.load("logvar")));
  EXPECT_TRUE(close(r.z, io.load("z")));
  EXPECT_TRUE(close(model.decode(io.load("z")), io.load("dec")));
}

TEST(Ae2dParity, BatchItemsNeverMix) {
  const Model model = load_dir(kCase);
  const SafetensorsFile io = golden_io();
  const EncodeResult r = model.encode(repeat_batch(io.load("x"), 2));
  EXPECT_TRUE(close(r.moments, repeat_batch(io.load("moments"), 2)));
  EXPECT_TRUE(close(r.mean, repeat_batch(io.load("mean"), 2)));
  EXPECT_TRUE(close(r.logvar, repeat_batch(io.load("logvar"), 2)));
  EXPECT_TRUE(close(r.z, repeat_batch(io.load("z"), 2)));
  EXPECT_TRUE(close(model.decode(repeat_batch(io.load("z"), 2)), repeat_batch(io.load("dec"), 2)));
}

TEST(Ae2d, NonSquareFramesAreIndependent) {
  // Frames are coded one by one: a two-frame clip equals its frames coded separately.
  const Model model = load_dir(kCase);
  const Tensor x = random_tensor({1, 3, 2, 16, 40}, 3);
  const EncodeResult both = model.encode(x);
  ASSERT_EQ(both.z.shape(), (Shape{1, 4, 2, 8, 20}));
  const Tensor dec = model.decode(both.z);
  ASSERT_EQ(dec.shape(), (Shape{1, 3, 2, 16, 40}));
  for (int64_t t = 0; t < 2; ++t) {
    Tensor frame = Tensor::empty({1, 3, 1, 16, 40});
    for (int64_t c = 0; c < 3; ++c)
      std::copy_n(x.data() + (c * 2 + t) * 640, 640, frame.data() + c * 640);
    const EncodeResult one = model.encode(frame);
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t i = 0; i < 160; ++i)
        ASSERT_NEAR(one.z.data()[c * 160 + i], both.z.data()[(c * 2 + t) * 160 + i], 1e-5);
  }
}

TEST(Ae2d, SamplingIsSeeded) {
  const Model model = load_dir(kCase);
  expect_seeded_sampling(model, golden_io().load("x"));
}

TEST(Ae2d, RefusesBadInputShapes) {
  const Model model = load_dir(kCase);
  EXPECT_THROW(model.encode(random_tensor({1, 3, 32, 32}, 1)), Error);     // rank 4
  EXPECT_THROW(model.encode(random_tensor({1, 4, 1, 32, 32}, 1)), Error);  // channels
  EXPECT_THROW(model.encode(random_tensor({1, 3, 1, 31, 32}, 1)), Error);  // odd height
  EXPECT_THROW(model.decode(random_tensor({1, 3, 1, 8, 8}, 1)), Error);    // latent channels
  try {
    model.encode(random_tensor({1, 4, 1, 32, 32}, 1));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("4 channels"), std::string::npos) << e.what();
  }
}

// The error of a documented speed mode against the golden (float64) references.
void expect_mode_close(const ComputeOptions& mode, double bound) {
  VVAE_SKIP_UNLESS_CPU_RUNS(mode);
  const SafetensorsFile io = golden_io();
  LoadOptions o;
  o.model = data_path(kCase);
  o.compute = mode;
  const Model model = Model::load(o);
  // Planned first, as the CLI does: a plan must leave the model ready to run in any mode.
  model.plan_decode(model.plan_encode(io.load("x").shape()).output);
  const double z = relative_error(model.encode(io.load("x")).z, io.load("z"));
  const double dec = relative_error(model.decode(io.load("z")), io.load("dec"));
  std::cout << "z " << z << ", dec " << dec << "\n";
  EXPECT_LT(z, bound);
  EXPECT_LT(dec, bound);
}

TEST(Ae2dModes, Bf16StaysClose) {
  expect_mode_close({Precision::kBf16, ConvAlgorithm::kDirect}, 5e-2);
}

TEST(Ae2dModes, DirectKeepsParity) {
  expect_mode_close({Precision::kFp32, ConvAlgorithm::kDirect}, 1e-4);
}

TEST(Ae2dModes, WinogradKeepsParity) {
  expect_mode_close({Precision::kFp32, ConvAlgorithm::kWinograd}, 1e-4);
}

// --- checkpoints ---------------------------------------------------------------------------

std::map<std::string, Tensor> golden_weights() {
  const auto file = SafetensorsFile::open(data_path(kCase + "/weights.safetensors"));
  std::map<std::string, Tensor> out;
  for (const auto& name : file.names()) out[name] = file.load(name).clone();
  return out;
}

std::string write_weights(const std::string& name, const std::map<std::string, Tensor>& weights) {
  std::vector<NamedTensor> tensors;
  for (const auto& [k, v] : weights) tensors.push_back({k, v});
  const std::string path = temp_path(name);
  save_safetensors(path, tensors);
  return path;
}

Model load_with(const std::string& weights, bool strict = false) {
  LoadOptions o;
  o.config = data_path(kCase + "/config.json");
  o.weights = weights;
  o.strict = strict;
  return Model::load(o);
}

TEST(Ae2dCheckpoint, MissingAndMisshapedTensorsAreListedTogether) {
  auto w = golden_weights();
  w.erase("decoder.conv_out.bias");
  w.erase("encoder.mid.attn_1.q.weight");
  w["encoder.conv_in.weight"] = random_tensor({32, 3, 1, 1}, 1);
  const std::string msg = error_of([&] { load_with(write_weights("missing.safetensors", w)); });
  EXPECT_NE(msg.find("2 missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("decoder.conv_out.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("encoder.mid.attn_1.q.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("encoder.conv_in.weight is [32, 3, 1, 1], needs [32, 3, 3, 3]"),
            std::string::npos)
      << msg;
}

TEST(Ae2dCheckpoint, UnexpectedTensorsWarnOrFailWhenStrict) {
  auto w = golden_weights();
  w["encoder.extra.weight"] = random_tensor({2}, 1);
  const std::string path = write_weights("extra.safetensors", w);
  const Model model = load_with(path);
  ASSERT_EQ(model.info().warnings.size(), 1u);
  EXPECT_EQ(model.info().warnings[0], "encoder.extra.weight");
  const std::string msg = error_of([&] { load_with(path, true); });
  EXPECT_NE(msg.find("unexpected (encoder.extra.weight)"), std::string::npos) << msg;
}

TEST(Ae2dCheckpoint, ParameterListFollowsTheCheckpoint) {
  const Model model = load_dir(kCase);
  const auto file = SafetensorsFile::open(data_path(kCase + "/weights.safetensors"));
  EXPECT_EQ(model.info().parameter_count, 658283);
  EXPECT_EQ(model.info().parameters.size(), file.entries().size());
  EXPECT_EQ(model.info().parameters.front().name, "encoder.conv_in.weight");
  EXPECT_TRUE(model.info().warnings.empty());
}

// The weights as a BF16 safetensors file, written by hand (vvae itself writes F32 only).
std::string write_bf16(const std::string& name, const std::map<std::string, Tensor>& weights) {
  nlohmann::json header;
  std::string data;
  for (const auto& [k, t] : weights) {
    const size_t begin = data.size();
    for (int64_t i = 0; i < t.numel(); ++i) {
      const uint16_t h = float_to_bf16(t.data()[i]);
      data.append(reinterpret_cast<const char*>(&h), 2);
    }
    header[k] = {{"dtype", "BF16"}, {"shape", t.shape()}, {"data_offsets", {begin, data.size()}}};
  }
  const std::string path = temp_path(name);
  write_bytes(path, safetensors_bytes(header.dump(), data));
  return path;
}

TEST(Ae2dCheckpoint, Bf16CheckpointIsConvertedOnLoad) {
  const Model bf16 = load_with(write_bf16("bf16.safetensors", golden_weights()));
  const SafetensorsFile io = golden_io();
  const Tensor dec = bf16.decode(io.load("z"));
  // BF16 keeps 8 significant bits: close to the F32 reference, but not exact.
  const double err = relative_error(dec, io.load("dec"));
  EXPECT_LT(err, 0.05);
  EXPECT_GT(err, 1e-6);
}

// A BF16 checkpoint is read again, and converted, when each layer packs its weights: the same
// numbers as a float32 checkpoint of the same values, and no float32 copy of the weights kept
// after loading (only the small parameters used as they are: norms and biases).
TEST(Ae2dCheckpoint, Bf16CheckpointKeepsNoFloat32CopyOfItsWeights) {
  std::map<std::string, Tensor> rounded = golden_weights();
  for (auto& [k, t] : rounded)
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = bf16_to_float(float_to_bf16(t.data()[i]));
  const std::string bf16_path = write_bf16("bf16_lean.safetensors", rounded);
  const std::string f32_path = write_weights("bf16_values.safetensors", rounded);
  rounded.clear();

  const int64_t before = live_tensor_bytes();
  const Model bf16 = load_with(bf16_path);
  const int64_t held = live_tensor_bytes() - before;
  const int64_t weight_bytes = bf16.info().parameter_count * int64_t{sizeof(float)};
  EXPECT_LT(held, weight_bytes / 10) << held << " bytes held of " << weight_bytes;

  const Model f32 = load_with(f32_path);
  const SafetensorsFile io = golden_io();
  const Tensor z = io.load("z");
  EXPECT_TRUE(close(bf16.decode(z), f32.decode(z), 0.0));
  EXPECT_TRUE(close(bf16.encode(io.load("x")).z, f32.encode(io.load("x")).z, 0.0));
  EXPECT_TRUE(close(bf16.decode(z), f32.decode(z), 0.0));  // packed once, used again
}

// Upstream -> diffusers AutoencoderKL naming, written independently of the loader's mapping.
std::string to_diffusers(const std::string& name, int levels) {
  static const std::vector<std::pair<std::regex, std::string>> rules = {
      {std::regex(R"(^encoder\.down\.(\d+)\.block\.(\d+)\.)"),
       "encoder.down_blocks.$1.resnets.$2."},
      {std::regex(R"(^encoder\.down\.(\d+)\.downsample\.)"),
       "encoder.down_blocks.$1.downsamplers.0."},
      {std::regex(R"(\.mid\.block_1\.)"), ".mid_block.resnets.0."},
      {std::regex(R"(\.mid\.block_2\.)"), ".mid_block.resnets.1."},
      {std::regex(R"(\.mid\.attn_1\.norm\.)"), ".mid_block.attentions.0.group_norm."},
      {std::regex(R"(\.mid\.attn_1\.q\.)"), ".mid_block.attentions.0.to_q."},
      {std::regex(R"(\.mid\.attn_1\.k\.)"), ".mid_block.attentions.0.to_k."},
      {std::regex(R"(\.mid\.attn_1\.v\.)"), ".mid_block.attentions.0.to_v."},
      {std::regex(R"(\.mid\.attn_1\.proj_out\.)"), ".mid_block.attentions.0.to_out.0."},
      {std::regex(R"(\.nin_shortcut\.)"), ".conv_shortcut."},
      {std::regex(R"(\.norm_out\.)"), ".conv_norm_out."}};
  std::string out = name;
  std::smatch m;
  if (std::regex_search(name, m,
                        std::regex(R"(^decoder\.up\.(\d+)\.(block|upsample)\.?(\d*)\.?)"))) {
    const int level = std::stoi(m[1]);
    const std::string idx = std::to_string(levels - 1 - level);
    out = m[2] == "block" ? "decoder.up_blocks." + idx + ".resnets." + std::string(m[3]) + "." +
                                std::string(m.suffix())
                          : "decoder.up_blocks." + idx + ".upsamplers.0." + std::string(m.suffix());
  }
  for (const auto& [re, rep] : rules) out = std::regex_replace(out, re, rep);
  return out;
}

TEST(Ae2dCheckpoint, DiffusersNamingGivesTheSameModel) {
  std::map<std::string, Tensor> renamed;
  for (const auto& [name, t] : golden_weights()) {
    const std::string d = to_diffusers(name, 2);
    // diffusers stores attention projections as Linear [C, C].
    const bool linear =
        d.find("attentions.0.to_") != std::string::npos && d.find(".weight") != std::string::npos;
    renamed[d] = linear ? t.reshape({t.dim(0), t.dim(1)}) : t;
  }
  ASSERT_TRUE(renamed.count("decoder.up_blocks.0.upsamplers.0.conv.weight"));
  ASSERT_TRUE(renamed.count("decoder.up_blocks.1.resnets.0.conv_shortcut.weight"));
  const Model model = load_with(write_weights("diffusers.safetensors", renamed), true);
  const SafetensorsFile io = golden_io();
  const EncodeResult r = model.encode(io.load("x"));
  EXPECT_TRUE(close(r.moments, io.load("moments")));
  EXPECT_TRUE(close(model.decode(io.load("z")), io.load("dec")));
}

// --- config --------------------------------------------------------------------------------

std::string write_config(const std::string& name, const std::string& args) {
  const std::string path = temp_path(name);
  std::ofstream(path) << R"({"family": "ae2d", "model_args": )" << args << "}";
  return path;
}

std::string config_error(const std::string& args) {
  LoadOptions o;
  o.config = write_config("config.json", args);
  o.weights = data_path(kCase + "/weights.safetensors");
  return error_of([&] { Model::load(o); });
}

TEST(Ae2dConfig, RefusesWhatItDoesNotImplement) {
  const std::string base = R"("ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1, "z_channels": 4)";
  EXPECT_EQ(config_error("{" + base + R"(, "sample": true, "from_pretrained": null})"), "");
  EXPECT_NE(
      config_error("{" + base + R"(, "is_training": true})").find("unknown key 'is_training'"),
      std::string::npos);
  EXPECT_NE(config_error("{" + base + R"(, "foo": 1})").find("unknown key 'foo'"),
            std::string::npos);
  EXPECT_NE(config_error(R"({"ch": "wide"})").find("ch must be an integer"), std::string::npos);
  EXPECT_NE(config_error(R"({"ch": 48, "ch_mult": [1, 2]})").find("multiple of 32"),
            std::string::npos);
  LoadOptions o;
  o.config = temp_path("broken.json");
  std::ofstream(o.config) << "{ not json";
  o.weights = data_path(kCase + "/weights.safetensors");
  EXPECT_NE(error_of([&] { Model::load(o); }).find("not valid JSON"), std::string::npos);
  std::ofstream(o.config) << R"({"family": "vqgan"})";
  EXPECT_NE(error_of([&] { Model::load(o); }).find("unknown model family 'vqgan'"),
            std::string::npos);
}

TEST(Ae2dConfig, PresetNeedsWeightsUnlessDescribed) {
  LoadOptions o;
  o.model = "flux-ae";
  EXPECT_NE(error_of([&] { Model::load(o); }).find("--weights"), std::string::npos);
  o.without_weights = true;
  const Model m = Model::load(o);
  EXPECT_EQ(m.info().preset, "flux-ae");
  EXPECT_EQ(m.info().parameter_count, 83819683);  // the released model's count
  EXPECT_EQ(m.plan_encode({1, 3, 5, 256, 384}).output, (Shape{1, 16, 5, 32, 48}));
  o.model = "no-such-model";
  EXPECT_NE(error_of([&] { Model::load(o); }).find("neither a model directory"), std::string::npos);
}

// --- full size -----------------------------------------------------------------------------

TEST(FullSize, FluxAePresetRoundTrip) {
  if (!VVAE_FULL_SIZE_TESTS) GTEST_SKIP() << "full-size models run in the Release build only";
  const std::string path = temp_path("flux-ae-random.safetensors");
  const auto params = write_random_checkpoint(*find_preset("flux-ae"), path, 1234);
  EXPECT_EQ(by_name(params), by_name(read_key_list("keys/flux-ae.txt")));

  LoadOptions o;
  o.model = path;  // a bare checkpoint: recognised as flux-ae from its tensors
  const Model model = Model::load(o);
  EXPECT_EQ(model.info().preset, "flux-ae");
  const Tensor x = random_tensor({1, 3, 2, 64, 64}, 9);
  const EncodeResult r = model.encode(x);
  ASSERT_EQ(r.z.shape(), (Shape{1, 16, 2, 8, 8}));
  ASSERT_EQ(r.mean.shape(), (Shape{1, 16, 2, 8, 8}));
  const Tensor y = model.decode(r.z);
  ASSERT_EQ(y.shape(), x.shape());
  for (const Tensor* t : {&r.z, &r.logvar, &y}) ASSERT_TRUE(all_finite(*t));
  expect_default_matches_direct(o, x);
  fs::remove(path);
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace vvae::test
