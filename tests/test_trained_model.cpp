// The bundled trained model (models/ae2d-tiny) on clips held out of its training
// (tests/data/heldout, written by tools/train/train.py heldout): the reconstruction quality must
// not fall below the floors set from the measurement in models/ae2d-tiny/MODEL_CARD.md, and
// vvae must match the PyTorch reconstruction stored beside each clip.
#include <algorithm>
#include <cmath>
#include <string>

#include "test_util.hpp"
#include "vvae/model.hpp"
#include "vvae/safetensors.hpp"

namespace vvae::test {
namespace {

const std::string kModel = std::string(VVAE_MODELS_DIR) + "/ae2d-tiny";

// 8-bit PSNR (data range 255) of two clips in [-1, 1]: both are clamped and rounded to 8 bits
// first, as a video file would store them.
double psnr8(const Tensor& a, const Tensor& b) {
  auto to8 = [](float v) { return std::round((std::clamp(v, -1.0f, 1.0f) + 1.0f) * 127.5f); };
  double sq = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = double{to8(a.data()[i])} - double{to8(b.data()[i])};
    sq += d * d;
  }
  const double mse = sq / static_cast<double>(a.numel());
  return mse > 0 ? 10.0 * std::log10(255.0 * 255.0 / mse) : INFINITY;
}

Model load_trained() {
  LoadOptions o;
  o.model = kModel;
  o.strict = true;
  return Model::load(o);
}

// Encodes and decodes the held-out clip `name`; checks parity with PyTorch and the PSNR floor
// (measured in MODEL_CARD.md, minus 0.5 dB).
void check_heldout(const std::string& name, double floor_db) {
  const Model model = load_trained();
  const SafetensorsFile f = SafetensorsFile::open(data_path("heldout/" + name + ".safetensors"));
  const Tensor x = f.load("x");
  const Tensor rec = model.decode(model.encode(x).z);
  ASSERT_EQ(rec.shape(), x.shape());
  EXPECT_TRUE(close(rec, f.load("x_rec_torch")));  // the same numbers as PyTorch
  const double psnr = psnr8(x, rec);
  EXPECT_GE(psnr, floor_db) << name << ": the reconstruction got worse";
  ::testing::Test::RecordProperty("psnr8", std::to_string(psnr));
}

TEST(TrainedModel, HeldoutImageChelsea0) {
  check_heldout("chelsea-0", 24.5);
}
TEST(TrainedModel, HeldoutMotionCoffee0) {
  check_heldout("coffee-0", 22.5);
}

TEST(TrainedModelConfig, IsTheSmallAe2d) {
  const Model model = load_trained();
  const ModelInfo& info = model.info();
  EXPECT_EQ(info.family, "ae2d");
  EXPECT_EQ(info.spatial_ratio, 8);
  EXPECT_EQ(info.latent_channels, 16);
  EXPECT_TRUE(info.warnings.empty());
}

}  // namespace
}  // namespace vvae::test
