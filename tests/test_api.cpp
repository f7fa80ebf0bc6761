// The public API's conventions beyond Open-Sora's: unscaled latents (diffusers' convention),
// progress reports and cancellation, posterior draws from (mean, logvar), the latent scaling in
// ModelInfo, and diffusers model folders (config.json + diffusion_pytorch_model.safetensors).
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>
#include "test_util.hpp"
#include "vvae/error.hpp"
#include "vvae/model.hpp"
#include "vvae/safetensors.hpp"

namespace vvae::test {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

Model load_dir(const std::string& dir) {
  LoadOptions o;
  o.model = dir;
  return Model::load(o);
}

SafetensorsFile io_of(const std::string& golden_case) {
  return SafetensorsFile::open(data_path("golden/" + golden_case + "/io.safetensors"));
}

// z * factor + offset, elementwise (test-side reference of a latent's scaling).
Tensor affine(const Tensor& z, double factor, double offset) {
  Tensor out = z.clone();
  for (int64_t i = 0; i < out.numel(); ++i)
    out.data()[i] = static_cast<float>(z.data()[i] * factor + offset);
  return out;
}

TEST(UnscaledLatents, GaussianFamiliesGiveTheRawPosterior) {
  for (const std::string name : {"ae2d_small", "hunyuan_small"}) {
    SCOPED_TRACE(name);
    const Model model = load_dir(data_path("golden/" + name));
    const SafetensorsFile io = io_of(name);
    const double scale = model.info().scale_factor, shift = model.info().shift_factor;
    ASSERT_NE(shift, 0.0);  // both golden cases shift, so a missing shift cannot pass unseen
    EncodeOptions raw;
    raw.unscaled = true;
    const EncodeResult r = model.encode(io.load("x"), raw);
    EXPECT_TRUE(close(r.z, io.load("mean")));  // the mode, unscaled
    EXPECT_TRUE(close(affine(r.z, scale, -scale * shift), io.load("z")));
    DecodeOptions unscaled;
    unscaled.unscaled = true;
    const Tensor z_raw = affine(io.load("z"), 1.0 / scale, shift);
    EXPECT_TRUE(close(model.decode(z_raw, unscaled), io.load("dec")));
    // The scaled default is upstream's.
    EXPECT_TRUE(close(model.decode(io.load("z")), io.load("dec")));
  }
}

TEST(UnscaledLatents, TheDcaeSkipsItsScalingFactor) {
  const Model model = load_dir(data_path("golden/dcae_tiled"));
  const SafetensorsFile io = io_of("dcae_tiled");
  ASSERT_DOUBLE_EQ(model.info().scale_factor, 0.8);
  EXPECT_DOUBLE_EQ(model.info().shift_factor, 0.0);
  EncodeOptions raw;
  raw.unscaled = true;
  // Upstream divides the encoder's output by scaling_factor: the raw latent is z * 0.8.
  EXPECT_TRUE(close(model.encode(io.load("x"), raw).z, affine(io.load("z"), 0.8, 0.0)));
  DecodeOptions unscaled;
  unscaled.unscaled = true;
  EXPECT_TRUE(close(model.decode(affine(io.load("z"), 0.8, 0.0), unscaled), io.load("dec")));
}

TEST(SamplePosterior, DrawsWhatEncodeDraws) {
  const Model model = load_dir(data_path("golden/ae2d_small"));
  const Tensor x = io_of("ae2d_small").load("x");
  EncodeOptions o;
  o.sample = true;
  o.seed = 17;
  o.unscaled = true;
  const EncodeResult r = model.encode(x, o);
  const Tensor draw = sample_posterior(r.mean, r.logvar, 17);
  EXPECT_EQ(max_abs_diff(draw, r.z), 0.0);
  EXPECT_GT(max_abs_diff(sample_posterior(r.mean, r.logvar, 18), r.z), 1e-3);
  EXPECT_GT(max_abs_diff(draw, r.mean), 1e-3);  // a draw, not the mode
  EXPECT_THROW(sample_posterior(r.mean, Tensor::zeros({1, 4, 3, 16, 8}), 1), Error);
  EXPECT_THROW(sample_posterior(Tensor(), r.logvar, 1), Error);
}

TEST(Progress, CountsEveryUnitAndEndsAtTheTotal) {
  struct Case {
    std::string name;
    Shape x;
    int64_t steps, decode_steps;  // units through the network
  };
  // ae2d codes every frame; hunyuan_tiled runs 2 temporal tiles of 2 x 2 spatial tiles each way
  // for 17 x 48 x 48 (its config.json's forward_calls: 8 encoder and 8 decoder calls).
  for (const Case& c : {Case{"ae2d_small", {2, 3, 3, 16, 16}, 6, 6},
                        Case{"hunyuan_tiled", {1, 3, 17, 48, 48}, 8, 8}}) {
    SCOPED_TRACE(c.name);
    const Model model = load_dir(data_path("golden/" + c.name));
    std::vector<std::pair<int64_t, int64_t>> reports;
    EncodeOptions o;
    o.progress = [&](int64_t done, int64_t total) {
      reports.emplace_back(done, total);
      return true;
    };
    const EncodeResult r = model.encode(random_tensor(c.x, 5), o);
    ASSERT_EQ(static_cast<int64_t>(reports.size()), c.steps);
    for (size_t i = 0; i < reports.size(); ++i)
      EXPECT_EQ(reports[i], std::make_pair(static_cast<int64_t>(i) + 1, c.steps));
    reports.clear();
    DecodeOptions d;
    d.progress = o.progress;
    model.decode(r.z, d);
    ASSERT_EQ(static_cast<int64_t>(reports.size()), c.decode_steps);
    EXPECT_EQ(reports.back(), std::make_pair(c.decode_steps, c.decode_steps));
  }
}

TEST(Progress, FalseCancels) {
  const Model model = load_dir(data_path("golden/ae2d_small"));
  int calls = 0;
  EncodeOptions o;
  o.progress = [&](int64_t, int64_t) { return ++calls < 2; };
  EXPECT_THROW(model.encode(random_tensor({1, 3, 4, 16, 16}, 1), o), Cancelled);
  EXPECT_EQ(calls, 2);  // nothing ran after the cancelling report
}

TEST(Shapes, CheckedWithoutRunning) {
  const Model model = load_dir(data_path("golden/hunyuan_small"));
  EXPECT_EQ(model.encoded_shape({2, 3, 9, 32, 48}), (Shape{2, 4, 3, 4, 6}));
  EXPECT_EQ(model.decoded_shape({2, 4, 3, 4, 6}), (Shape{2, 3, 9, 32, 48}));
  EXPECT_THROW(model.encoded_shape({1, 3, 8, 32, 32}), Error);  // not 1 + 4k frames
  EXPECT_THROW(model.encoded_shape({1, 3, 9, 30, 32}), Error);  // H not a multiple of 8
  EXPECT_THROW(model.decoded_shape({1, 3, 3, 4, 4}), Error);    // 3 latent channels, not 4
  EXPECT_THROW(model.encoded_shape({1, 3, 9, 32}), Error);
}

// A diffusers folder: config.json as diffusers writes it beside
// diffusion_pytorch_model.safetensors (here the golden weights, under any naming the family
// reads).
std::string diffusers_folder(const std::string& name, const Json& config,
                             const std::string& golden_case) {
  static int folders = 0;  // one fresh folder per call
  const std::string dir = temp_path(name + "_" + std::to_string(++folders));
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << config.dump(2);
  fs::create_symlink(fs::absolute(data_path("golden/" + golden_case + "/weights.safetensors")),
                     dir + "/diffusion_pytorch_model.safetensors");
  return dir;
}

Json flux_like_config() {
  return Json{{"_class_name", "AutoencoderKL"},
              {"_diffusers_version", "0.32.0"},
              {"in_channels", 3},
              {"out_channels", 3},
              {"down_block_types", {"DownEncoderBlock2D", "DownEncoderBlock2D"}},
              {"up_block_types", {"UpDecoderBlock2D", "UpDecoderBlock2D"}},
              {"block_out_channels", {32, 64}},
              {"layers_per_block", 1},
              {"act_fn", "silu"},
              {"latent_channels", 4},
              {"norm_num_groups", 32},
              {"sample_size", 32},
              {"scaling_factor", 0.3611},
              {"shift_factor", 0.1159},
              {"latents_mean", nullptr},
              {"latents_std", nullptr},
              {"force_upcast", true},
              {"use_quant_conv", false},
              {"use_post_quant_conv", false},
              {"mid_block_add_attention", true}};
}

TEST(DiffusersFolder, AutoencoderKLIsTheAe2d) {
  const Model model = load_dir(diffusers_folder("kl", flux_like_config(), "ae2d_small"));
  EXPECT_EQ(model.info().family, "ae2d");
  EXPECT_DOUBLE_EQ(model.info().scale_factor, 0.3611);
  EXPECT_DOUBLE_EQ(model.info().shift_factor, 0.1159);
  const SafetensorsFile io = io_of("ae2d_small");
  const EncodeResult r = model.encode(io.load("x"));
  EXPECT_TRUE(close(r.mean, io.load("mean")));
  EXPECT_TRUE(close(r.z, io.load("z")));
  EXPECT_TRUE(close(model.decode(io.load("z")), io.load("dec")));
}

TEST(DiffusersFolder, HunyuanVideoTakesDiffusersDefaults) {
  const Json config{{"_class_name", "AutoencoderKLHunyuanVideo"},
                    {"in_channels", 3},
                    {"out_channels", 3},
                    {"latent_channels", 4},
                    {"down_block_types", std::vector<std::string>(4, "HunyuanVideoDownBlock3D")},
                    {"up_block_types", std::vector<std::string>(4, "HunyuanVideoUpBlock3D")},
                    {"block_out_channels", {8, 16, 16, 16}},
                    {"layers_per_block", 1},
                    {"act_fn", "silu"},
                    {"norm_num_groups", 4},
                    {"scaling_factor", 0.476986},
                    {"spatial_compression_ratio", 8},
                    {"temporal_compression_ratio", 4},
                    {"mid_block_add_attention", true}};
  const Model model = load_dir(diffusers_folder("hv", config, "hunyuan_small"));
  EXPECT_EQ(model.info().family, "hunyuan");
  EXPECT_DOUBLE_EQ(model.info().shift_factor, 0.0);  // diffusers has no shift
  const Json args = Json::parse(model.info().config_json);
  // diffusers' framewise coding: temporal tiles of 16 frames at a stride of 12.
  EXPECT_EQ(args["use_temporal_tiling"], true);
  EXPECT_EQ(args["sample_tsize"], 16);
  EXPECT_EQ(args["use_spatial_tiling"], false);
  // 9 frames fit in one tile: the golden posterior (the golden shift does not touch it).
  const SafetensorsFile io = io_of("hunyuan_small");
  const EncodeResult r = model.encode(io.load("x"));
  EXPECT_TRUE(close(r.mean, io.load("mean")));
  EXPECT_TRUE(close(r.logvar, io.load("logvar")));
  DecodeOptions unscaled;
  unscaled.unscaled = true;
  EXPECT_TRUE(
      close(model.decode(affine(io.load("z"), 1.0 / 0.476986, 0.05), unscaled), io.load("dec")));
  // 21 frames run 2 temporal tiles, as diffusers' _temporal_tiled_encode does.
  EXPECT_EQ(model.plan_encode({1, 3, 21, 32, 32}).notes.front().rfind("temporal tiles: 2", 0), 0u);
}

TEST(DiffusersFolder, RefusesWhatIsNotImplemented) {
  const auto refused = [](const Json& config, const std::string& needle) {
    try {
      load_dir(diffusers_folder("bad", config, "ae2d_small"));
    } catch (const Error& e) {
      if (std::string(e.what()).find(needle) != std::string::npos)
        return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "message lacks '" << needle << "': " << e.what();
    }
    return ::testing::AssertionFailure() << "loaded";
  };
  Json quant = flux_like_config();
  quant["use_quant_conv"] = true;
  EXPECT_TRUE(refused(quant, "use_quant_conv"));
  Json missing = flux_like_config();
  missing.erase("use_post_quant_conv");  // diffusers' default builds one
  EXPECT_TRUE(refused(missing, "use_post_quant_conv"));
  Json groups = flux_like_config();
  groups["norm_num_groups"] = 16;
  EXPECT_TRUE(refused(groups, "norm_num_groups"));
  Json blocks = flux_like_config();
  blocks["down_block_types"] = {"DownEncoderBlock2D", "AttnDownEncoderBlock2D"};
  EXPECT_TRUE(refused(blocks, "down_block_types"));
  Json unknown = flux_like_config();
  unknown["new_option"] = 1;
  EXPECT_TRUE(refused(unknown, "new_option"));
  Json other = flux_like_config();
  other["_class_name"] = "AutoencoderKLWan";
  EXPECT_TRUE(refused(other, "AutoencoderKLWan"));
}

}  // namespace
}  // namespace vvae::test
