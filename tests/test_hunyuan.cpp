// HunyuanVideo's causal 3D VAE against Open-Sora's golden vectors (untiled and tiled), its
// config and input checks, and the full-size hunyuan-vae preset.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "io/safetensors.hpp"
#include "models/family.hpp"
#include "test_util.hpp"
#include "vvae/error.hpp"
#include "vvae/model.hpp"

namespace vvae::test {
namespace {

namespace fs = std::filesystem;

const std::string kSmall = "golden/hunyuan_small";
const std::string kTiled = "golden/hunyuan_tiled";
const std::string kTiledOv50 = "golden/hunyuan_tiled_ov50";

Model load_case(const std::string& dir, const TilingOptions& tiling = {}) {
  LoadOptions o;
  o.model = data_path(dir);
  o.tiling = tiling;
  return Model::load(o);
}

SafetensorsFile golden_io(const std::string& dir) {
  return SafetensorsFile::open(data_path(dir + "/io.safetensors"));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TilingOptions untiled() {
  TilingOptions t;
  t.disable = true;
  return t;
}

// Parity of one tensor; the relative error is recorded (--gtest_output=xml lists it).
void expect_parity(const std::string& name, const Tensor& ours, const Tensor& ref) {
  ::testing::Test::RecordProperty(name, std::to_string(relative_error(ours, ref)));
  EXPECT_TRUE(close(ours, ref)) << name;
}

// --- parity --------------------------------------------------------------------------------

TEST(HunyuanParity, SmallEveryGoldenTensor) {
  const Model model = load_case(kSmall);
  const SafetensorsFile io = golden_io(kSmall);
  const EncodeResult r = model.encode(io.load("x"));
  expect_parity("moments", r.moments, io.load("moments"));
  expect_parity("mean", r.mean, io.load("mean"));
  expect_parity("logvar", r.logvar, io.load("logvar"));
  expect_parity("z", r.z, io.load("z"));
  expect_parity("dec", model.decode(io.load("z")), io.load("dec"));
}

TEST(HunyuanParity, SmallSingleFrame) {
  const Model model = load_case(kSmall);
  const SafetensorsFile io = golden_io(kSmall);
  const EncodeResult r = model.encode(io.load("x_t1"));
  expect_parity("moments_t1", r.moments, io.load("moments_t1"));
  expect_parity("z_t1", r.z, io.load("z_t1"));
  expect_parity("dec_t1", model.decode(io.load("z_t1")), io.load("dec_t1"));
}

TEST(HunyuanParity, SmallBatchItemsNeverMix) {
  const Model model = load_case(kSmall);
  const SafetensorsFile io = golden_io(kSmall);
  const EncodeResult r = model.encode(repeat_batch(io.load("x"), 2));
  expect_parity("moments", r.moments, repeat_batch(io.load("moments"), 2));
  expect_parity("mean", r.mean, repeat_batch(io.load("mean"), 2));
  expect_parity("logvar", r.logvar, repeat_batch(io.load("logvar"), 2));
  expect_parity("z", r.z, repeat_batch(io.load("z"), 2));
  expect_parity("dec", model.decode(repeat_batch(io.load("z"), 2)),
                repeat_batch(io.load("dec"), 2));
}

void expect_untiled_parity(const std::string& dir) {
  const Model model = load_case(dir, untiled());
  const SafetensorsFile io = golden_io(dir);
  const EncodeResult r = model.encode(io.load("x"));
  expect_parity("moments_untiled", r.moments, io.load("moments_untiled"));
  expect_parity("z_untiled", r.z, io.load("z_untiled"));
  expect_parity("dec_untiled", model.decode(io.load("z_untiled")), io.load("dec_untiled"));
}

TEST(HunyuanParity, TiledCaseUntiled) {
  expect_untiled_parity(kTiled);
}

TEST(HunyuanParity, TiledOv50CaseUntiled) {
  expect_untiled_parity(kTiledOv50);
}

void expect_tiled_parity(const std::string& dir, int64_t batch) {
  const Model model = load_case(dir);
  const SafetensorsFile io = golden_io(dir);
  const auto ref = [&](const char* name) { return repeat_batch(io.load(name), batch); };
  const EncodeResult r = model.encode(ref("x"));
  expect_parity("moments", r.moments, ref("moments"));
  expect_parity("mean", r.mean, ref("mean"));
  expect_parity("logvar", r.logvar, ref("logvar"));
  expect_parity("z", r.z, ref("z"));
  expect_parity("dec", model.decode(ref("z")), ref("dec"));
}

TEST(HunyuanParity, Tiled) {
  expect_tiled_parity(kTiled, 1);
}

TEST(HunyuanParity, TiledOv50) {
  expect_tiled_parity(kTiledOv50, 1);
}

TEST(HunyuanParity, TiledBatchItemsNeverMix) {
  expect_tiled_parity(kTiledOv50, 2);
}

// --- inputs --------------------------------------------------------------------------------

TEST(Hunyuan, RefusesBadInputShapes) {
  const Model model = load_case(kSmall);
  const std::string frames = error_of([&] { model.encode(random_tensor({1, 3, 8, 32, 32}, 1)); });
  EXPECT_NE(frames.find("1 + 4k frames (1, 5, 9, 13, ...), got 8 frames"), std::string::npos)
      << frames;
  EXPECT_NE(frames.find("trim the clip to 5 frames"), std::string::npos) << frames;
  EXPECT_NE(error_of([&] { model.encode(random_tensor({1, 3, 2, 32, 32}, 1)); }), "");
  const std::string channels = error_of([&] { model.encode(random_tensor({1, 4, 1, 32, 32}, 1)); });
  EXPECT_NE(channels.find("4 channels, the model expects 3"), std::string::npos) << channels;
  const std::string size = error_of([&] { model.encode(random_tensor({1, 3, 1, 32, 36}, 1)); });
  EXPECT_NE(size.find("multiples of 8, got 32x36"), std::string::npos) << size;
  EXPECT_NE(error_of([&] { model.encode(random_tensor({1, 3, 32, 32}, 1)); }), "");   // rank 4
  EXPECT_NE(error_of([&] { model.decode(random_tensor({1, 3, 1, 4, 4}, 1)); }), "");  // channels
  EXPECT_NE(error_of([&] { model.plan_encode({1, 3, 10, 32, 32}); }), "");
}

TEST(Hunyuan, NonSquareClipShapes) {
  const Model model = load_case(kSmall);
  const Tensor x = random_tensor({2, 3, 5, 16, 40}, 3);
  const EncodeResult r = model.encode(x);
  ASSERT_EQ(r.z.shape(), (Shape{2, 4, 2, 2, 5}));
  ASSERT_EQ(r.moments.shape(), (Shape{2, 8, 2, 2, 5}));
  const Tensor y = model.decode(r.z);
  ASSERT_EQ(y.shape(), x.shape());
  // The two samples are coded independently.
  Tensor second = Tensor::empty({1, 3, 5, 16, 40});
  std::copy_n(x.data() + second.numel(), second.numel(), second.data());
  const EncodeResult one = model.encode(second);
  for (int64_t i = 0; i < one.z.numel(); ++i)
    ASSERT_NEAR(one.z.data()[i], r.z.data()[one.z.numel() + i], 1e-5);
  EXPECT_EQ(model.plan_encode({2, 3, 5, 16, 40}).output, r.z.shape());
  EXPECT_EQ(model.plan_decode(r.z.shape()).output, x.shape());
}

}  // namespace
}  // namespace vvae::test
