// The pure pieces of the video pipeline: Open-Sora's buckets and resize_crop geometry, frame
// selection, metrics, latent statistics, manifests and shards, against hand-computed cases and
// independent reference implementations.
#include <cmath>
#include <random>

#include "media/frames.hpp"
#include "media/geometry.hpp"
#include "test_util.hpp"
#include "vvae/clip.hpp"
#include "vvae/manifest.hpp"
#include "vvae/metrics.hpp"

namespace vvae {
namespace {

using test::temp_path;
using test::write_bytes;

// ---- geometry ------------------------------------------------------------------------------

TEST(Geometry, ResolutionNames) {
  EXPECT_EQ(parse_resolution("256px").pixels, 256 * 256);
  EXPECT_EQ(parse_resolution("256").pixels, 256 * 256);
  EXPECT_EQ(parse_resolution("720p").pixels, 921600);  // int(720 * 720 / 9 * 16)
  EXPECT_EQ(parse_resolution("360p").pixels, 230400);
  const Resolution r = parse_resolution("512px_ar1:1");
  EXPECT_EQ(r.pixels, 512 * 512);
  EXPECT_EQ(r.setting, "ar1:1");
  EXPECT_THROW(parse_resolution("big"), Error);
  EXPECT_THROW(parse_resolution("256px_wide"), Error);
  EXPECT_THROW(parse_resolution("-256"), Error);
  EXPECT_EQ(bucket_multiple(8), 16);
  EXPECT_EQ(bucket_multiple(2), 16);
  EXPECT_EQ(bucket_multiple(32), 32);
}

// get_aspect_ratios_dict(256 * 256) with D = 16, worked out by hand: e.g. 2.39:1 starts at
// width int(sqrt(65536 * 2.39) // 16) * 16 = 384, height int(65536 / 384 // 16) * 16 = 160,
// then (176, 384) and finally (160, 400) come closer to 65536 pixels; 1.85:1 and 5:8 land on
// the sizes of 16:9 and 9:16 and are dropped; the vertical twins follow.
TEST(Geometry, Buckets256px) {
  const auto b = aspect_ratio_buckets(256 * 256, 16);
  const std::vector<std::tuple<std::string, int64_t, int64_t>> expected = {
      {"2.39:1", 160, 400}, {"2:1", 176, 368}, {"16:9", 192, 336}, {"9:16", 336, 192},
      {"3:2", 208, 320},    {"4:3", 224, 288}, {"1:1", 256, 256},  {"1:2.39", 400, 160},
      {"1:2", 368, 176},    {"2:3", 320, 208}, {"3:4", 288, 224}};
  ASSERT_EQ(b.size(), expected.size());
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(b[i].ratio, std::get<0>(expected[i])) << i;
    EXPECT_EQ(b[i].height, std::get<1>(expected[i])) << b[i].ratio;
    EXPECT_EQ(b[i].width, std::get<2>(expected[i])) << b[i].ratio;
  }
  // With D = 32 (the DC-AE's multiple) duplicates fall differently: 16:9 is dropped as a
  // duplicate of 2:1's vertical twin and only comes back as 9:16's twin, so 1:2 and 9:16 share
  // a size (the values Open-Sora's aspect.py gives with AE_SPATIAL_COMPRESSION=32).
  const auto b32 = aspect_ratio_buckets(256 * 256, 32);
  ASSERT_EQ(b32.size(), 9u);
  EXPECT_EQ(b32[0].ratio, "2.39:1");
  EXPECT_EQ(b32[0].width, 416);
  EXPECT_EQ(b32[6].ratio, "1:2");
  EXPECT_EQ(b32[6].height, 352);
  EXPECT_EQ(b32[7].ratio, "16:9");
  EXPECT_EQ(b32[7].width, 352);
  const auto b720 = aspect_ratio_buckets(parse_resolution("720p").pixels, 32);
  ASSERT_EQ(b720.size(), 13u);
  EXPECT_EQ(b720[2].ratio, "16:9");
  EXPECT_EQ(b720[2].height, 704);
  EXPECT_EQ(b720[2].width, 1312);
  EXPECT_EQ(b720[7].height, 960);

  const auto square = resolution_buckets(parse_resolution("512px_ar1:1"), 32);
  ASSERT_EQ(square.size(), 1u);
  EXPECT_EQ(square[0].height, 512);
  EXPECT_EQ(square[0].width, 512);
  EXPECT_THROW(resolution_buckets(parse_resolution("256px_ar7:3"), 16), Error);
  // Every bucket of a DC-AE (spatial ratio 32) is a multiple of 32.
  for (const auto& k : aspect_ratio_buckets(720 * 720 * 16 / 9, bucket_multiple(32)))
    EXPECT_TRUE(k.height % 32 == 0 && k.width % 32 == 0) << k.ratio;
}

TEST(Geometry, ClosestBucketAndResizeCrop) {
  const auto b = aspect_ratio_buckets(256 * 256, 16);
  EXPECT_EQ(closest_bucket(360, 640, b).ratio, "16:9");
  EXPECT_EQ(closest_bucket(640, 360, b).ratio, "9:16");
  EXPECT_EQ(closest_bucket(480, 480, b).ratio, "1:1");
  EXPECT_EQ(closest_bucket(480, 640, b).ratio, "4:3");

  // 360x640 -> 192x336: rh = 0.533 > rw = 0.525, so height 192 and width
  // round(640 * 192 / 360) = round(341.33) = 341, cropped at x = (341 - 336) // 2 = 2.
  ResizeCrop g = resize_crop_geometry(360, 640, 192, 336);
  EXPECT_EQ(g.scaled_height, 192);
  EXPECT_EQ(g.scaled_width, 341);
  EXPECT_EQ(g.top, 0);
  EXPECT_EQ(g.left, 2);
  // Portrait: 640x360 -> 336x192 scales to 341x192 and crops at y = 2.
  g = resize_crop_geometry(640, 360, 336, 192);
  EXPECT_EQ(g.scaled_height, 341);
  EXPECT_EQ(g.scaled_width, 192);
  EXPECT_EQ(g.top, 2);
  EXPECT_EQ(g.left, 0);
  // Python's round: 5 * 0.5 = 2.5 -> 2 (ties to even), 7 * 0.5 = 3.5 -> 4.
  g = resize_crop_geometry(4, 5, 2, 2);
  EXPECT_EQ(g.scaled_width, 2);
  EXPECT_EQ(g.left, 0);
  g = resize_crop_geometry(4, 7, 2, 2);
  EXPECT_EQ(g.scaled_width, 4);
  EXPECT_EQ(g.left, 1);
  EXPECT_EQ(round_half_even(2.5), 2);
  EXPECT_EQ(round_half_even(3.5), 4);
  EXPECT_EQ(round_half_even(341.333), 341);

  g = crop_to_multiple(33, 47, 8);
  EXPECT_EQ(g.height, 32);
  EXPECT_EQ(g.width, 40);
  EXPECT_EQ(g.top, 0);
  EXPECT_EQ(g.left, 3);
  EXPECT_FALSE(g.resizes(33, 47));
  EXPECT_THROW(crop_to_multiple(6, 40, 8), Error);
}

// torch.nn.functional.interpolate(mode="bilinear", align_corners=False) written out in double.
std::vector<double> reference_bilinear(const std::vector<uint8_t>& rgb, int64_t h, int64_t w,
                                       int64_t oh, int64_t ow, int64_t c) {
  std::vector<double> out(static_cast<size_t>(oh * ow));
  auto src = [](int64_t o, int64_t in, int64_t out_size) {
    double s =
        (static_cast<double>(o) + 0.5) * static_cast<double>(in) / static_cast<double>(out_size) -
        0.5;
    return std::max(s, 0.0);
  };
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      const double sy = src(y, h, oh), sx = src(x, w, ow);
      const int64_t y0 = static_cast<int64_t>(sy), x0 = static_cast<int64_t>(sx);
      const int64_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
      const double ly = sy - static_cast<double>(y0), lx = sx - static_cast<double>(x0);
      auto v = [&](int64_t yy, int64_t xx) { return rgb[(yy * w + xx) * 3 + c] / 255.0; };
      out[y * ow + x] = (1 - ly) * ((1 - lx) * v(y0, x0) + lx * v(y0, x1)) +
                        ly * ((1 - lx) * v(y1, x0) + lx * v(y1, x1));
    }
  return out;
}

TEST(Geometry, ResizeCropFrameMatchesTorchBilinear) {
  std::mt19937 rng(7);
  const int64_t h = 37, w = 53;
  std::vector<uint8_t> rgb(static_cast<size_t>(h * w * 3));
  for (auto& v : rgb) v = static_cast<uint8_t>(rng() % 256);
  for (auto [th, tw] : {std::pair<int64_t, int64_t>{16, 24}, {48, 32}, {37, 20}, {64, 96}}) {
    const ResizeCrop g = resize_crop_geometry(h, w, th, tw);
    std::vector<float> out(static_cast<size_t>(3 * th * tw));
    resize_crop_frame(rgb.data(), h, w, g, out.data(), th * tw);
    for (int64_t c = 0; c < 3; ++c) {
      const auto ref = reference_bilinear(rgb, h, w, g.scaled_height, g.scaled_width, c);
      double worst = 0;
      for (int64_t y = 0; y < th; ++y)
        for (int64_t x = 0; x < tw; ++x) {
          const double r = (ref[(y + g.top) * g.scaled_width + x + g.left] - 0.5) / 0.5;
          worst = std::max(worst, std::abs(r - out[c * th * tw + y * tw + x]));
        }
      EXPECT_LT(worst, 1e-5) << th << "x" << tw << " channel " << c;
    }
  }
  // Hand cases: halving averages 2x2 blocks; doubling gives v0, 3/4 v0 + 1/4 v1, ...
  std::vector<uint8_t> img(4 * 4 * 3);
  for (int64_t i = 0; i < 16; ++i)
    for (int c = 0; c < 3; ++c) img[i * 3 + c] = static_cast<uint8_t>(i * 10);
  std::vector<float> half(3 * 4);
  resize_crop_frame(img.data(), 4, 4, resize_crop_geometry(4, 4, 2, 2), half.data(), 4);
  // Top-left block: pixels 0, 10, 40, 50 -> mean 25.
  EXPECT_NEAR(half[0], (25.0 / 255 - 0.5) / 0.5, 1e-6);
  std::vector<uint8_t> two = {0, 0, 0, 200, 200, 200};  // 1x2: 0 | 200
  std::vector<float> four(3 * 4);
  resize_crop_frame(two.data(), 1, 2, resize_crop_geometry(1, 2, 1, 4), four.data(), 4);
  const double expect[4] = {0, 50, 150, 200};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(four[i], (expect[i] / 255 - 0.5) / 0.5, 1e-6) << i;
}

// ---- frames --------------------------------------------------------------------------------

TEST(Frames, SamplingInterval) {
  EXPECT_EQ(fps_interval(30, 16), 2);  // ceil(30 / 16)
  EXPECT_EQ(fps_interval(60, 16), 4);
  EXPECT_EQ(fps_interval(17, 16), 2);
  EXPECT_EQ(fps_interval(16, 16), 1);
  EXPECT_EQ(fps_interval(12, 16), 1);
  EXPECT_EQ(fps_interval(24, 0), 1);
  EXPECT_EQ(fps_interval(0, 16), 1);
  FrameRequest r;
  r.fps_max = 16;
  r.frame_interval = 3;
  const FrameSampling s = frame_sampling(30, r);
  EXPECT_EQ(s.interval, 6);
  EXPECT_DOUBLE_EQ(s.fps, 5.0);
  EXPECT_DOUBLE_EQ(frame_sampling(0, r).fps, 0.0);
}

TEST(Frames, LinspaceAndSelection) {
  EXPECT_EQ(linspace_indices(0, 7, 4), (std::vector<int64_t>{0, 2, 4, 7}));
  EXPECT_EQ(linspace_indices(0, 10, 4), (std::vector<int64_t>{0, 3, 6, 10}));
  EXPECT_EQ(linspace_indices(0, 15, 4), (std::vector<int64_t>{0, 5, 10, 15}));
  EXPECT_EQ(linspace_indices(0, 96, 97).back(), 96);
  EXPECT_EQ(linspace_indices(3, 3, 1), (std::vector<int64_t>{3}));

  const FrameSelector spread(4, 2);  // 4 frames over 8: linspace(0, 7, 4)
  EXPECT_TRUE(spread.wanted(0));
  EXPECT_TRUE(spread.wanted(6));  // kept in case the video is short
  EXPECT_TRUE(spread.wanted(7));
  EXPECT_FALSE(spread.wanted(5));
  EXPECT_FALSE(spread.wanted(8));
  EXPECT_FALSE(spread.done(7));
  EXPECT_TRUE(spread.done(8));
  EXPECT_EQ(spread.select(20), (std::vector<int64_t>{0, 2, 4, 7}));
  std::string note;
  EXPECT_EQ(spread.select(5, &note), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_NE(note.find("has 5 frames"), std::string::npos) << note;

  const FrameSelector every_third(0, 3);
  EXPECT_FALSE(every_third.done(1000));
  EXPECT_EQ(every_third.select(10), (std::vector<int64_t>{0, 3, 6, 9}));
}

TEST(Frames, ValidCounts) {
  EXPECT_EQ(valid_frame_count(17, 4, true), 17);
  EXPECT_EQ(valid_frame_count(16, 4, true), 13);
  EXPECT_EQ(valid_frame_count(3, 4, true), 1);
  EXPECT_EQ(valid_frame_count(1, 4, true), 1);
  EXPECT_EQ(valid_frame_count(12, 4, false), 12);
  EXPECT_EQ(valid_frame_count(15, 4, false), 12);
  EXPECT_EQ(valid_frame_count(3, 4, false), 1);
  EXPECT_EQ(valid_frame_count(7, 1, false), 7);
  EXPECT_EQ(frame_count_rule(4, true), "1 + 4k");
  EXPECT_EQ(frame_count_rule(1, false), "any");
}

// ---- metrics -------------------------------------------------------------------------------

std::vector<uint8_t> random_image(int64_t h, int64_t w, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(static_cast<size_t>(h * w * 3));
  for (auto& x : v) x = static_cast<uint8_t>(rng() % 256);
  return v;
}

// SSIM straight from its definition: every k x k window, the 2-D Gaussian weights written out.
double reference_ssim(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, int64_t h,
                      int64_t w, int64_t k) {
  std::vector<double> g(static_cast<size_t>(k * k));
  double sum = 0;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const double di = static_cast<double>(i - k / 2), dj = static_cast<double>(j - k / 2);
      g[i * k + j] = std::exp(-(di * di + dj * dj) / (2 * 1.5 * 1.5));
      sum += g[i * k + j];
    }
  const double c1 = 6.5025, c2 = 58.5225;
  double total = 0;
  for (int64_t c = 0; c < 3; ++c) {
    double acc = 0;
    int64_t count = 0;
    for (int64_t y = 0; y + k <= h; ++y)
      for (int64_t x = 0; x + k <= w; ++x) {
        double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < k; ++j) {
            const double wgt = g[i * k + j] / sum;
            const double va = a[((y + i) * w + x + j) * 3 + c],
                         vb = b[((y + i) * w + x + j) * 3 + c];
            mx += wgt * va;
            my += wgt * vb;
            sxx += wgt * va * va;
            syy += wgt * vb * vb;
            sxy += wgt * va * vb;
          }
        const double vx = sxx - mx * mx, vy = syy - my * my, cov = sxy - mx * my;
        acc += (2 * mx * my + c1) * (2 * cov + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
        ++count;
      }
    total += acc / static_cast<double>(count);
  }
  return total / 3;
}

TEST(Metrics, PsnrKnownValues) {
  const int64_t h = 8, w = 9;
  std::vector<uint8_t> a(static_cast<size_t>(h * w * 3), 100), b = a;
  EXPECT_DOUBLE_EQ(frame_psnr(a.data(), b.data(), h, w), kPsnrCap);
  for (auto& v : b) v = 105;  // |diff| 5 everywhere: 20 log10(255 / 5)
  EXPECT_NEAR(frame_psnr(a.data(), b.data(), h, w), 20 * std::log10(255.0 / 5), 1e-12);
  b = a;
  b[0] = 0;  // one channel of one pixel off by 100: MSE = 100^2 / (h w 3)
  EXPECT_NEAR(frame_psnr(a.data(), b.data(), h, w),
              10 * std::log10(255.0 * 255 / (10000.0 / (h * w * 3))), 1e-12);
}

TEST(Metrics, SsimKnownValues) {
  const int64_t h = 16, w = 20;
  const auto a = random_image(h, w, 1);
  EXPECT_NEAR(frame_ssim(a.data(), a.data(), h, w), 1.0, 1e-12);
  // Two flat images 100 and 110: every window has zero variance, so
  // SSIM = (2 * 100 * 110 + C1) / (100^2 + 110^2 + C1).
  std::vector<uint8_t> p(static_cast<size_t>(h * w * 3), 100), q(p.size(), 110);
  const double c1 = (0.01 * 255) * (0.01 * 255);
  EXPECT_NEAR(frame_ssim(p.data(), q.data(), h, w), (22000 + c1) / (10000 + 12100 + c1), 1e-12);
}

TEST(Metrics, SsimMatchesDirectDefinition) {
  for (auto [h, w] : {std::pair<int64_t, int64_t>{24, 31}, {11, 11}, {40, 12}}) {
    const auto a = random_image(h, w, 2), noise = random_image(h, w, 3);
    std::vector<uint8_t> b(a.size());
    for (size_t i = 0; i < a.size(); ++i)
      b[i] = static_cast<uint8_t>(std::min(255, a[i] / 2 + noise[i] / 3));
    EXPECT_NEAR(frame_ssim(a.data(), b.data(), h, w), reference_ssim(a, b, h, w, 11), 1e-9)
        << h << "x" << w;
  }
  // Frames under 11 pixels use the largest odd window that fits.
  const auto a = random_image(7, 9, 4), b = random_image(7, 9, 5);
  EXPECT_NEAR(frame_ssim(a.data(), b.data(), 7, 9), reference_ssim(a, b, 7, 9, 7), 1e-9);
}

TEST(Metrics, ClipMeansOverFrames) {
  RgbFrames a(2, 12, 12), b(2, 12, 12);
  std::fill(a.data.begin(), a.data.end(), 50);
  std::fill(b.data.begin(), b.data.end(), 50);
  std::fill(b.data.begin() + b.frame_bytes(), b.data.end(), 60);  // frame 1 off by 10
  const ClipMetrics m = clip_metrics(a, b);
  ASSERT_EQ(m.psnr.size(), 2u);
  EXPECT_DOUBLE_EQ(m.psnr[0], kPsnrCap);
  EXPECT_NEAR(m.psnr[1], 20 * std::log10(25.5), 1e-12);
  EXPECT_NEAR(m.mean_psnr, (kPsnrCap + 20 * std::log10(25.5)) / 2, 1e-12);
  EXPECT_THROW(clip_metrics(a, RgbFrames(2, 12, 10)), Error);
}

TEST(Metrics, StatsPyRunningFormula) {
  // scripts/vae/stats.py, one clip per batch, written out directly.
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.3f, 1.7f);
  std::vector<std::vector<float>> zs = {std::vector<float>(500), std::vector<float>(300),
                                        std::vector<float>(800)};
  for (auto& z : zs)
    for (auto& v : z) v = dist(rng);
  double running_sum = 0, running_var = 0;
  RunningLatentStats stats;
  for (size_t n = 1; n <= zs.size(); ++n) {
    const auto& z = zs[n - 1];
    double mean = 0;
    for (float v : z) mean += v;
    running_sum += mean / static_cast<double>(z.size());
    double var = 0;
    for (float v : z) {
      const double d = v - running_sum / static_cast<double>(n);
      var += d * d;
    }
    running_var += var / static_cast<double>(z.size());
    stats.add(latent_moments(z.data(), static_cast<int64_t>(z.size())));
  }
  EXPECT_NEAR(stats.mean(), running_sum / 3, 1e-12);
  EXPECT_NEAR(stats.std(), std::sqrt(running_var / 3), 1e-10);
  EXPECT_EQ(stats.count(), 3);
}

// ---- clips: 8-bit conversion ---------------------------------------------------------------

TEST(Clip, SaveSampleRounding) {
  Tensor x = Tensor::empty({1, 3, 1, 1, 6});
  const float in[6] = {-1.0f, 1.0f, 0.0f, 2.0f, -3.0f, NAN};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 6; ++i) x.data()[c * 6 + i] = in[i];
  const RgbFrames f = tensor_to_rgb(x);
  const uint8_t expect[6] = {0, 255, 128, 255, 0, 0};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(f.frame(0)[i * 3], expect[i]) << i;
  // Every byte survives bytes -> [-1, 1] -> bytes.
  RgbFrames all(1, 1, 256);
  for (int i = 0; i < 256; ++i)
    for (int c = 0; c < 3; ++c) all.data[i * 3 + c] = static_cast<uint8_t>(i);
  EXPECT_EQ(tensor_to_rgb(rgb_to_tensor(all)).data, all.data);
  EXPECT_EQ(parse_size("256x448"), (std::pair<int64_t, int64_t>{256, 448}));
  EXPECT_THROW(parse_size("256"), Error);
  EXPECT_THROW(parse_size("0x8"), Error);
}

// ---- manifests -----------------------------------------------------------------------------

TEST(Manifest, CsvQuotingAndLineEnds) {
  const auto rows = parse_csv(
      "\xEF\xBB\xBFpath,text,fps\r\n\"a,b.mp4\",\"say "
      "\"\"hi\"\"\",30\r\n\nc.mp4,\"two\nlines\",\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"path", "text", "fps"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"a,b.mp4", "say \"hi\"", "30"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"c.mp4", "two\nlines", ""}));
  EXPECT_THROW(parse_csv("path\n\"open"), Error);
}

TEST(Manifest, PathColumnNamesAndShards) {
  const std::string csv = temp_path("manifest.csv");
  write_bytes(csv,
              "id,text,path,extra\n1,x,clips/a.mp4,9\n2,\"y, z\",other/a.mkv,\n3,w,b.mp4,1\n"
              "4,v,c/a.mp4,2\n");
  const auto entries = read_manifest(csv);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].path, "clips/a.mp4");
  EXPECT_EQ(entries[0].name, "a");
  EXPECT_EQ(entries[1].name, "a-1");  // the same stem again: -<row>
  EXPECT_EQ(entries[2].name, "b");
  EXPECT_EQ(entries[3].name, "a-3");
  EXPECT_EQ(entries[3].row, 3);

  const Shard s = parse_shard("1/2");
  EXPECT_EQ(s.index, 1);
  EXPECT_EQ(s.count, 2);
  const auto odd = shard_entries(entries, s), even = shard_entries(entries, parse_shard("0/2"));
  ASSERT_EQ(odd.size(), 2u);
  EXPECT_EQ(odd[0].row, 1);
  EXPECT_EQ(odd[1].row, 3);
  EXPECT_EQ(even.size(), 2u);
  for (const char* bad : {"2/2", "1", "a/b", "-1/3", "1/0"}) EXPECT_THROW(parse_shard(bad), Error);

  write_bytes(csv, "file,text\na.mp4,x\n");
  EXPECT_THROW(read_manifest(csv), Error);
  write_bytes(csv, "");
  EXPECT_THROW(read_manifest(csv), Error);
  EXPECT_THROW(read_manifest(temp_path("none.csv")), Error);
}

}  // namespace
}  // namespace vvae
