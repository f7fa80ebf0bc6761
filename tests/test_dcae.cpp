// The Video DC-AE against Open-Sora's golden vectors (untiled, tiled, single frame, batches),
// its input rules, the short-tail merge of tiled decoding, its config reader, and the full-size
// dc-ae-f32t4c128 preset.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>
#include "models/family.hpp"
#include "test_util.hpp"
#include "vvae/error.hpp"
#include "vvae/model.hpp"
#include "vvae/safetensors.hpp"

namespace vvae::test {
namespace {

namespace fs = std::filesystem;

Model load_case(const std::string& name, const TilingOptions& tiling = {},
                const std::map<std::string, std::string>& model_args = {}) {
  LoadOptions o;
  o.model = data_path("golden/" + name);
  o.tiling = tiling;
  o.model_args = model_args;
  return Model::load(o);
}

SafetensorsFile io_of(const std::string& name) {
  return SafetensorsFile::open(data_path("golden/" + name + "/io.safetensors"));
}

TilingOptions no_tiling() {
  TilingOptions t;
  t.disable = true;
  return t;
}

// --- parity --------------------------------------------------------------------------------

TEST(DcaeParity, SmallEveryTensor) {
  const Model model = load_case("dcae_small");
  const SafetensorsFile io = io_of("dcae_small");
  EXPECT_TRUE(close(model.encode(io.load("x")).z, io.load("z")));
  EXPECT_TRUE(close(model.decode(io.load("z")), io.load("dec")));
  // One frame: temporal down/up-sampling is skipped.
  EXPECT_TRUE(close(model.encode(io.load("x_t1")).z, io.load("z_t1")));
  EXPECT_TRUE(close(model.decode(io.load("z_t1")), io.load("dec_t1")));
}

TEST(DcaeParity, SmallBatchOfTwo) {
  const Model model = load_case("dcae_small");
  const SafetensorsFile io = io_of("dcae_small");
  const EncodeResult r = model.encode(repeat_batch(io.load("x"), 2));
  // Deterministic: z only, the posterior's tensors undefined.
  EXPECT_FALSE(r.mean.defined());
  EXPECT_FALSE(r.logvar.defined());
  EXPECT_FALSE(r.moments.defined());
  EXPECT_TRUE(close(r.z, repeat_batch(io.load("z"), 2)));
  EXPECT_TRUE(close(model.decode(repeat_batch(io.load("z"), 2)), repeat_batch(io.load("dec"), 2)));
  EXPECT_TRUE(
      close(model.encode(repeat_batch(io.load("x_t1"), 2)).z, repeat_batch(io.load("z_t1"), 2)));
}

class DcaeTiledParity : public ::testing::TestWithParam<std::string> {};

TEST_P(DcaeTiledParity, TiledAndUntiledTensors) {
  const std::string name = GetParam();
  const SafetensorsFile io = io_of(name);
  const Model tiled = load_case(name);
  EXPECT_TRUE(close(tiled.encode(io.load("x")).z, io.load("z")));
  EXPECT_TRUE(close(tiled.decode(io.load("z")), io.load("dec")));
  const Model untiled = load_case(name, no_tiling());
  EXPECT_TRUE(close(untiled.encode(io.load("x")).z, io.load("z_untiled")));
  EXPECT_TRUE(close(untiled.decode(io.load("z_untiled")), io.load("dec_untiled")));
}

TEST_P(DcaeTiledParity, TiledBatchOfTwo) {
  const std::string name = GetParam();
  const SafetensorsFile io = io_of(name);
  const Model tiled = load_case(name);
  EXPECT_TRUE(close(tiled.encode(repeat_batch(io.load("x"), 2)).z, repeat_batch(io.load("z"), 2)));
  EXPECT_TRUE(close(tiled.decode(repeat_batch(io.load("z"), 2)), repeat_batch(io.load("dec"), 2)));
}

INSTANTIATE_TEST_SUITE_P(Cases, DcaeTiledParity,
                         ::testing::Values("dcae_tiled", "dcae_tiled_ov50"));

TEST(DcaeParity, TilingPlansAreUpstreams) {
  // dcae_tiled: 8 encoder and 8 decoder calls upstream (2 temporal x 2 x 2 spatial tiles).
  const Model m = load_case("dcae_tiled");
  const RunPlan enc = m.plan_encode({1, 3, 20, 48, 48});
  EXPECT_EQ(enc.output, (Shape{1, 8, 5, 6, 6}));
  ASSERT_GE(enc.notes.size(), 2u);
  EXPECT_NE(enc.notes[0].find("temporal tiles: 2 of 16 frames every 12"), std::string::npos)
      << enc.notes[0];
  EXPECT_NE(enc.notes[1].find("2 x 2 of 32 every 24"), std::string::npos) << enc.notes[1];
  const RunPlan dec = m.plan_decode(enc.output);
  EXPECT_EQ(dec.output, (Shape{1, 3, 20, 48, 48}));
  EXPECT_NE(dec.notes[0].find("temporal tiles: 2 of 4 frames every 3"), std::string::npos)
      << dec.notes[0];
}

// --- input rules ---------------------------------------------------------------------------

TEST(Dcae, RefusesBadInputShapes) {
  const Model model = load_case("dcae_small");
  const auto encode_error = [&](const Shape& s) {
    return error_of([&] { model.encode(Tensor::zeros(s)); });
  };
  EXPECT_NE(encode_error({1, 3, 4, 64, 64}).find("at least 8"), std::string::npos)
      << encode_error({1, 3, 4, 64, 64});
  EXPECT_NE(encode_error({1, 3, 6, 64, 64}).find("multiple of 4"), std::string::npos);
  EXPECT_NE(encode_error({1, 3, 2, 64, 64}).find("multiple of 4"), std::string::npos);
  EXPECT_NE(encode_error({1, 3, 8, 48, 64}).find("multiples of 32"), std::string::npos);
  EXPECT_NE(encode_error({1, 3, 8, 64, 80}).find("multiples of 32"), std::string::npos);
  EXPECT_NE(encode_error({1, 4, 8, 64, 64}).find("4 channels"), std::string::npos);
  EXPECT_NE(encode_error({1, 3, 64, 64}).find("(B, C, T, H, W)"), std::string::npos);
  EXPECT_NE(error_of([&] {
              model.decode(Tensor::zeros({1, 3, 2, 2, 2}));
            }).find("3 channels"),
            std::string::npos);
  // Shapes are checked before any work, in plans too.
  EXPECT_THROW(model.plan_encode({1, 3, 10, 64, 64}).output, Error);
  EXPECT_EQ(model.plan_encode({1, 3, 12 + 4, 64, 64}).output, (Shape{1, 8, 4, 2, 2}));
  EXPECT_EQ(model.plan_encode({2, 3, 1, 32, 96}).output, (Shape{2, 8, 1, 1, 3}));
}

TEST(Dcae, MisalignedTilesAreRefused) {
  TilingOptions t;
  t.tile_size = 36;  // not a multiple of the spatial compression 8
  EXPECT_NE(error_of([&] { load_case("dcae_tiled", t); }).find("spatial_tile_size"),
            std::string::npos);
  t = {};
  t.tile_frames = 16;
  t.overlap = 0.3;  // step int(16 * 0.7) = 11 frames: tiles of odd length
  const Model m = load_case("dcae_tiled", t);
  EXPECT_THROW(m.plan_encode({1, 3, 24, 32, 32}), Error);
}

TEST(Dcae, TilingOptionsMapToTheConfig) {
  // dcae_small runs untiled; the CLI's tiling flags switch tiling on with their sizes.
  TilingOptions t;
  t.tile_size = 32;
  t.tile_frames = 4;
  t.overlap = 0.0;
  const Model m = load_case("dcae_small", t);
  const auto args = nlohmann::json::parse(m.info().config_json);
  EXPECT_EQ(args["use_spatial_tiling"], true);
  EXPECT_EQ(args["use_temporal_tiling"], true);
  EXPECT_EQ(args["spatial_tile_size"], 32);
  EXPECT_EQ(args["temporal_tile_size"], 4);
  EXPECT_EQ(args["tile_overlap_factor"], 0.0);
  const RunPlan enc = m.plan_encode({1, 3, 8, 64, 64});
  EXPECT_EQ(enc.output, (Shape{1, 8, 2, 2, 2}));
  ASSERT_EQ(enc.notes.size(), 2u);
  EXPECT_NE(enc.notes[0].find("temporal tiles: 2 of 4 frames every 4"), std::string::npos)
      << enc.notes[0];
  EXPECT_NE(enc.notes[1].find("2 x 2 of 32 every 32"), std::string::npos) << enc.notes[1];
  // The tiled run has the untiled shape (not its values: tiles do not see each other).
  EXPECT_EQ(m.encode(io_of("dcae_small").load("x")).z.shape(), enc.output);
  t = {};
  t.disable = true;
  t.tile_size = 64;
  EXPECT_NE(error_of([&] { load_case("dcae_tiled", t); }).find("--no-tiling cannot be combined"),
            std::string::npos);
}

// --- the short tail of tiled decoding ------------------------------------------------------

TEST(DcaeShortTail, LastTileOfOneLatentFrameIsMerged) {
  // dcae_tiled decodes temporal tiles of 4 latent frames every 3: a latent of 7 frames leaves a
  // last tile [6, 7) of one frame, which upstream decodes to one frame (25 frames instead of 28).
  const Tensor z = random_tensor({1, 8, 7, 6, 6}, 42, 3.0f);
  const Model merged = load_case("dcae_tiled");
  const Model compat = load_case("dcae_tiled", {}, {{"dcae_short_tail_compat", "true"}});

  const RunPlan plan = merged.plan_decode(z.shape());
  EXPECT_EQ(plan.output, (Shape{1, 3, 28, 48, 48}));
  std::string notes;
  for (const auto& n : plan.notes) notes += n + "\n";
  EXPECT_NE(notes.find("merged into the previous one"), std::string::npos) << notes;
  const RunPlan compat_plan = compat.plan_decode(z.shape());
  EXPECT_EQ(compat_plan.output, (Shape{1, 3, 25, 48, 48}));
  notes.clear();
  for (const auto& n : compat_plan.notes) notes += n + "\n";
  EXPECT_NE(notes.find("upstream short tail: 25 output frames instead of 28"), std::string::npos)
      << notes;

  const Tensor a = merged.decode(z), b = compat.decode(z);
  ASSERT_EQ(a.shape(), (Shape{1, 3, 28, 48, 48}));
  ASSERT_EQ(b.shape(), (Shape{1, 3, 25, 48, 48}));
  // Frames 0..23 come from the same two tiles blended the same way in both plans. Upstream's
  // one-frame tile then blends over min(16, 1, 4) = 1 frame with weight 0 on itself, so its
  // frame is the second tile's last frame: vvae's frame 27.
  const int64_t plane = 48 * 48;
  double diff = 0, tail = 0;
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t t = 0; t < 24; ++t)
      for (int64_t i = 0; i < plane; ++i)
        diff = std::max(diff, std::abs(double{a.data()[(c * 28 + t) * plane + i]} -
                                       b.data()[(c * 25 + t) * plane + i]));
    for (int64_t i = 0; i < plane; ++i)
      tail = std::max(tail, std::abs(double{a.data()[(c * 28 + 27) * plane + i]} -
                                     b.data()[(c * 25 + 24) * plane + i]));
  }
  EXPECT_EQ(diff, 0.0);
  EXPECT_EQ(tail, 0.0);
  // The merged tile really decodes frames 24..26 (not a copy of the last one).
  double moved = 0;
  for (int64_t i = 0; i < 3 * plane; ++i)
    moved = std::max(moved, std::abs(double{a.data()[(i / plane * 28 + 24) * plane + i % plane]} -
                                     a.data()[(i / plane * 28 + 27) * plane + i % plane]));
  EXPECT_GT(moved, 1e-3);
}

TEST(DcaeShortTail, PresetPlansOneHundredFrames) {
  // Open-Sora's settings (32-frame tiles, overlap 0.25): 100 frames encode to 25 latent frames,
  // whose last decode tile holds one latent frame: upstream returns 97 frames, vvae 100.
  LoadOptions o;
  o.model = "dc-ae-f32t4c128";
  o.without_weights = true;
  const Model model = Model::load(o);
  EXPECT_EQ(model.info().preset, "dc-ae-f32t4c128");
  EXPECT_EQ(model.info().parameter_count, 459462147);
  EXPECT_EQ(model.info().time_ratio, 4);
  EXPECT_EQ(model.info().spatial_ratio, 32);
  EXPECT_EQ(model.info().latent_channels, 128);
  EXPECT_FALSE(model.info().variational);
  EXPECT_FALSE(model.info().causal_time);
  const Shape z = model.plan_encode({1, 3, 100, 256, 256}).output;
  EXPECT_EQ(z, (Shape{1, 128, 25, 8, 8}));
  EXPECT_EQ(model.plan_decode(z).output, (Shape{1, 3, 100, 256, 256}));
  o.model_args["dcae_short_tail_compat"] = "true";  // the family's own key, in model_args
  EXPECT_EQ(Model::load(o).plan_decode(z).output, (Shape{1, 3, 97, 256, 256}));
  // Other families have no such key.
  o.model = "flux-ae";
  EXPECT_NE(error_of([&] { Model::load(o); }).find("unknown key 'dcae_short_tail_compat'"),
            std::string::npos);
  o.model_args["dcae_short_tail_compat"] = "yes";  // not JSON
  EXPECT_NE(error_of([&] { Model::load(o); }).find("is not a JSON value"), std::string::npos);
}

// --- config and checkpoints ----------------------------------------------------------------

nlohmann::json small_config() {
  std::ifstream in(data_path("golden/dcae_small/config.json"));
  return nlohmann::json::parse(in);
}

std::string config_error(const std::function<void(nlohmann::json&)>& edit,
                         const std::string& family = "dcae") {
  nlohmann::json config = small_config();
  config["family"] = family;
  edit(config["model_args"]);
  LoadOptions o;
  o.config = temp_path("dcae_config.json");
  std::ofstream(o.config) << config.dump();
  o.weights = data_path("golden/dcae_small/weights.safetensors");
  return error_of([&] { Model::load(o); });
}

TEST(DcaeConfig, RefusesWhatItDoesNotImplement) {
  using J = nlohmann::json;
  EXPECT_EQ(config_error([](J&) {}), "");
  EXPECT_EQ(config_error([](J&) {}, "dc_ae"), "");  // the upstream registry name
  const auto expect_error = [](const std::function<void(J&)>& edit, const std::string& text) {
    const std::string msg = config_error(edit);
    EXPECT_NE(msg.find(text), std::string::npos) << "expected '" << text << "' in: " << msg;
  };
  expect_error([](J& a) { a["is_training"] = true; }, "is_training = true is not supported");
  expect_error([](J& a) { a["is_image_model"] = true; }, "is_image_model");
  expect_error([](J& a) { a["foo"] = 1; }, "unknown key 'foo'");
  expect_error([](J& a) { a["encoder"]["foo"] = 1; }, "model_args.encoder has unknown key 'foo'");
  expect_error([](J& a) { a["encoder"]["norm"] = "rms2d"; }, "model_args.encoder.norm");
  expect_error([](J& a) { a["decoder"].erase("norm"); }, "upstream's default \"rms2d\"");
  expect_error([](J& a) { a["decoder"]["act"] = "gelu"; }, "model_args.decoder.act");
  expect_error([](J& a) { a["encoder"]["block_type"][3] = "EViT_GLU"; }, "EViT_GLU");
  expect_error([](J& a) { a["encoder"]["out_norm"] = "rms3d"; }, "out_norm");
  expect_error([](J& a) { a["decoder"]["upsample_shortcut"] = nullptr; }, "upsample_shortcut");
  expect_error([](J& a) { a["encoder"]["double_latent"] = true; }, "double_latent");
  expect_error([](J& a) { a["spatial_compression_ratio"] = 16; }, "spatial_compression_ratio");
  expect_error([](J& a) { a["time_compression_ratio"] = 8; }, "time_compression_ratio");
  expect_error([](J& a) { a["encoder"]["temporal_downsample"] = {true}; }, "temporal_downsample");
  expect_error([](J& a) { a["encoder"]["latent_channels"] = 16; }, "latent_channels");
  expect_error([](J& a) { a["encoder"]["depth_list"][0] = 0; }, "depth 0");
  expect_error([](J& a) { a["scaling_factor"] = 0.0; }, "scaling_factor");
  expect_error([](J& a) { a["tile_overlap_factor"] = 1.0; }, "tile_overlap_factor");
  expect_error([](J& a) { a.erase("encoder"); }, "model_args.encoder.norm");
}

TEST(DcaeCheckpoint, LoadsNonStrictly) {
  // Upstream loads the DC-AE with strict=False semantics in vvae's terms: unexpected tensors
  // warn, --strict makes them an error; missing ones are always an error.
  std::vector<NamedTensor> tensors;
  const auto file = SafetensorsFile::open(data_path("golden/dcae_small/weights.safetensors"));
  for (const auto& name : file.names()) tensors.push_back({name, file.load(name).clone()});
  tensors.push_back({"encoder.extra.weight", random_tensor({2}, 1)});
  const std::string path = temp_path("dcae_extra.safetensors");
  save_safetensors(path, tensors);
  LoadOptions o;
  o.config = data_path("golden/dcae_small/config.json");
  o.weights = path;
  const Model m = Model::load(o);
  ASSERT_EQ(m.info().warnings.size(), 1u);
  EXPECT_EQ(m.info().warnings[0], "encoder.extra.weight");
  EXPECT_EQ(m.info().parameters.size(), file.entries().size());
  o.strict = true;
  EXPECT_NE(error_of([&] { Model::load(o); }).find("unexpected (encoder.extra.weight)"),
            std::string::npos);
  tensors.erase(tensors.begin());
  save_safetensors(path, tensors);
  o.strict = false;
  EXPECT_NE(error_of([&] { Model::load(o); }).find("1 missing"), std::string::npos);
}

// --- full size -----------------------------------------------------------------------------

TEST(DcaePreset, ParametersAreTheReleasedList) {
  // Names, shapes and order of the state_dict of upstream's dc-ae-f32t4c128, from the model
  // built without weights (the full-size round trip below needs the Release build).
  LoadOptions o;
  o.model = "dc-ae-f32t4c128";
  o.without_weights = true;
  const Model model = Model::load(o);
  const auto& ours = model.info().parameters;
  const auto released = read_key_list("keys/dc-ae-f32t4c128.txt");
  ASSERT_EQ(ours.size(), released.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i].name, released[i].name) << "parameter " << i;
    EXPECT_EQ(ours[i].shape, released[i].shape) << released[i].name;
  }
}

TEST(FullSize, DcaePresetRoundTrip) {
  if (!VVAE_FULL_SIZE_TESTS) GTEST_SKIP() << "full-size models run in the Release build only";
  const std::string path = temp_path("dc-ae-random.safetensors");
  const auto params = write_random_checkpoint(*find_preset("dc-ae-f32t4c128"), path, 77);
  const auto upstream = by_name(read_key_list("keys/dc-ae-f32t4c128.txt"));
  ASSERT_EQ(upstream.size(), 339u);
  EXPECT_EQ(by_name(params), upstream);
  {
    LoadOptions o;
    o.model = path;  // a bare checkpoint: recognised as the preset from its tensors
    const Model model = Model::load(o);
    EXPECT_EQ(model.info().preset, "dc-ae-f32t4c128");
    EXPECT_TRUE(model.info().warnings.empty());
    const Tensor x = random_tensor({1, 3, 8, 64, 64}, 9);
    const Tensor z = model.encode(x).z;
    ASSERT_EQ(z.shape(), (Shape{1, 128, 2, 2, 2}));
    const Tensor y = model.decode(z);
    ASSERT_EQ(y.shape(), x.shape());
    for (const Tensor* t : {&z, &y}) ASSERT_TRUE(all_finite(*t));
    expect_default_matches_direct(o, x);
  }
  fs::remove(path);
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace vvae::test
