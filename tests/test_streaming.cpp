// Streamed runs (Model::encode_streamed, decode_streamed): the same bits as the whole-tensor
// calls for every family, tiled or not; the reader is asked for spans in order and the writer
// gets every frame once, in order; and a streamed plan of a long clip holds a temporal tile's
// frames, not the clip's.
#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"
#include "vvae/model.hpp"

namespace vvae::test {
namespace {

Model load(const std::string& golden) {
  LoadOptions o;
  o.model = data_path("golden/" + golden);
  return Model::load(o);
}

// Frames [begin, end) of x, copied (as a video reader would hand them over).
Tensor frames_of(const Tensor& x, int64_t begin, int64_t end) {
  Shape s = x.shape();
  s[2] = end - begin;
  Tensor part = Tensor::empty(s);
  const int64_t plane = s[3] * s[4], frames = x.dim(2);
  for (int64_t c = 0; c < s[0] * s[1]; ++c)
    for (int64_t t = 0; t < s[2]; ++t)
      for (int64_t i = 0; i < plane; ++i)
        part.data()[(c * s[2] + t) * plane + i] = x.data()[(c * frames + begin + t) * plane + i];
  return part;
}

// Encodes and decodes x both ways; checks the bits and the order of the spans and parts.
void check_streamed_is_whole(const Model& model, const Shape& shape, int64_t min_spans) {
  const Tensor x = random_tensor(shape, 11);
  const EncodeResult whole = model.encode(x);
  std::vector<std::pair<int64_t, int64_t>> spans;
  const EncodeResult streamed = model.encode_streamed(shape, [&](int64_t begin, int64_t end) {
    spans.emplace_back(begin, end);
    return frames_of(x, begin, end);
  });
  EXPECT_TRUE(close(streamed.z, whole.z, 0.0));
  if (whole.mean.defined()) {
    EXPECT_TRUE(close(streamed.mean, whole.mean, 0.0));
    EXPECT_TRUE(close(streamed.logvar, whole.logvar, 0.0));
  }
  ASSERT_GE(static_cast<int64_t>(spans.size()), min_spans);
  EXPECT_EQ(spans.front().first, 0);
  EXPECT_EQ(spans.back().second, shape[2]);
  for (size_t i = 1; i < spans.size(); ++i) {
    EXPECT_GE(spans[i].first, spans[i - 1].first);
    EXPECT_LE(spans[i].first, spans[i - 1].second);  // no frame skipped
  }

  const Tensor decoded = model.decode(whole.z);
  Tensor joined = Tensor::empty(decoded.shape());
  int64_t at = 0, parts = 0;
  model.decode_streamed(whole.z, [&](const Tensor& part) {
    ASSERT_LE(at + part.dim(2), joined.dim(2));
    const int64_t plane = part.dim(3) * part.dim(4), n = part.dim(2);
    for (int64_t c = 0; c < part.dim(0) * part.dim(1); ++c)
      for (int64_t t = 0; t < n; ++t)
        for (int64_t i = 0; i < plane; ++i)
          joined.data()[(c * joined.dim(2) + at + t) * plane + i] =
              part.data()[(c * n + t) * plane + i];
    at += n;
    ++parts;
  });
  EXPECT_EQ(at, decoded.dim(2));
  EXPECT_GE(parts, min_spans);
  EXPECT_TRUE(close(joined, decoded, 0.0));
}

TEST(Streaming, HunyuanTiledGivesTheWholeRunsBits) {
  check_streamed_is_whole(load("hunyuan_tiled"), {1, 3, 41, 48, 48}, 3);
}

TEST(Streaming, DcaeTiledGivesTheWholeRunsBits) {
  const Model model = load("dcae_tiled");
  check_streamed_is_whole(model, {1, 3, 40, 32, 32}, 2);
}

TEST(Streaming, Ae2dStreamsFrameByFrame) {
  check_streamed_is_whole(load("ae2d_small"), {2, 3, 5, 32, 32}, 5);
}

TEST(Streaming, UntiledRunsReadTheClipOnce) {
  LoadOptions o;
  o.model = data_path("golden/hunyuan_tiled");
  o.tiling.disable = true;
  check_streamed_is_whole(Model::load(o), {1, 3, 9, 32, 32}, 1);
}

TEST(Streaming, AStreamedPlanDoesNotGrowWithTheClip) {
  const Model model = load("hunyuan_tiled");
  const auto streamed = [&](int64_t frames) {
    return model.plan_encode({1, 3, frames, 64, 64}, std::nullopt, ClipIo::kStreamed)
        .estimated_peak_bytes;
  };
  const auto decoded = [&](int64_t frames) {
    const Shape z = model.plan_encode({1, 3, frames, 64, 64}).output;
    return model.plan_decode(z, std::nullopt, ClipIo::kStreamed).estimated_peak_bytes;
  };
  // 16x the frames: the latent grows (a few percent of the plan), the frames held do not.
  EXPECT_LT(streamed(16 * 32 + 1), streamed(33) * 11 / 10);
  EXPECT_LT(decoded(16 * 32 + 1), decoded(33) * 11 / 10);
  // Holding the whole clip does grow.
  EXPECT_GT(model.plan_encode({1, 3, 16 * 32 + 1, 64, 64}).estimated_peak_bytes,
            2 * streamed(16 * 32 + 1));
}

TEST(Streaming, ABadReaderIsAnError) {
  const Model model = load("hunyuan_tiled");
  const Shape shape = {1, 3, 17, 32, 32};
  const std::string wrong = error_of([&] {
    model.encode_streamed(shape, [](int64_t, int64_t) { return Tensor::zeros({1, 3, 1, 8, 8}); });
  });
  EXPECT_NE(wrong.find("frame reader gave"), std::string::npos) << wrong;
  const std::string nan = error_of([&] {
    model.encode_streamed(shape, [](int64_t b, int64_t e) {
      return Tensor::full({1, 3, e - b, 32, 32}, std::nanf(""));
    });
  });
  EXPECT_NE(nan.find("NaN"), std::string::npos) << nan;
}

}  // namespace
}  // namespace vvae::test
