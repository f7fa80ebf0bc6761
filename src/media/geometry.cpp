#include "media/geometry.hpp"

#include <cmath>
#include <cstdlib>
#include <numeric>
#include <utility>

#include "core/threads.hpp"
#include "vvae/error.hpp"
#include "vvae/limits.hpp"

namespace vvae {

namespace {

// opensora/datasets/aspect.py ASPECT_RATIO_LD_LIST (width:height), in order.
const char* const kAspectRatios[] = {"2.39:1", "2:1", "16:9", "1.85:1", "9:16",
                                     "5:8",    "3:2", "4:3",  "1:1"};

std::pair<double, double> split_ratio(const std::string& name) {
  const size_t colon = name.find(':');
  if (colon == std::string::npos) fail("bad aspect ratio '", name, "': expected W:H");
  const auto positive = [](const std::string& part, double* out) {
    char* end = nullptr;
    *out = std::strtod(part.c_str(), &end);
    return !part.empty() && end == part.c_str() + part.size() && *out > 0 && std::isfinite(*out);
  };
  double width = 0, height = 0;
  if (!positive(name.substr(0, colon), &width) || !positive(name.substr(colon + 1), &height))
    fail("bad aspect ratio '", name, "': expected W:H");
  return {width, height};
}

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  out = std::stoll(s);
  return out > 0;
}

// Python's float floor division (a // b, CPython's float_floor_div) followed by int().
int64_t floor_div(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
  double floordiv = std::floor(div);
  if (div - floordiv > 0.5) floordiv += 1.0;
  return static_cast<int64_t>(floordiv);
}

}  // namespace

int64_t round_half_even(double v) {
  return static_cast<int64_t>(std::nearbyint(v));
}

Resolution parse_resolution(const std::string& text) {
  Resolution r;
  r.name = text;
  std::string base = text;
  const size_t underscore = text.find('_');
  if (underscore != std::string::npos) {
    base = text.substr(0, underscore);
    r.setting = text.substr(underscore + 1);
    if (r.setting != "max" && r.setting.rfind("ar", 0) != 0)
      fail("bad resolution '", text, "': the setting after '_' is 'max' or 'arW:H'");
    if (r.setting != "max") split_ratio(r.setting.substr(2));
  }
  int64_t size = 0;
  if (base.size() > 2 && base.compare(base.size() - 2, 2, "px") == 0 &&
      parse_int(base.substr(0, base.size() - 2), size)) {
    r.pixels = size * size;
  } else if (base.size() > 1 && base.back() == 'p' &&
             parse_int(base.substr(0, base.size() - 1), size)) {
    r.pixels = static_cast<int64_t>(static_cast<double>(size * size) / 9.0 * 16.0);
  } else if (parse_int(base, size)) {
    r.pixels = size * size;
  } else {
    fail("bad resolution '", text, "': expected e.g. 256, 256px, 720p or 512px_ar1:1");
  }
  if (size < 16) fail("bad resolution '", text, "': too small");
  if (size > limits::kMaxSide)
    fail("resolution '", text, "' is larger than vvae's limit of ", limits::kMaxSide,
         " pixels a side");
  return r;
}

std::vector<AspectBucket> aspect_ratio_buckets(int64_t total_pixels, int64_t multiple) {
  const double D = static_cast<double>(multiple);
  const double total = static_cast<double>(total_pixels);
  std::vector<AspectBucket> main, vertical;
  for (const char* ratio : kAspectRatios) {
    const auto [wr, hr] = split_ratio(ratio);
    int64_t width = floor_div(std::sqrt(total * (wr / hr)), D) * multiple;
    if (width <= 0) continue;
    int64_t height = floor_div(total / static_cast<double>(width), D) * multiple;
    // training=True: step towards the pixel budget.
    int64_t diff = std::llabs(height * width - total_pixels);
    const std::pair<int64_t, int64_t> candidates[] = {{height - multiple, width},
                                                      {height + multiple, width},
                                                      {height, width - multiple},
                                                      {height, width + multiple}};
    for (const auto& [h, w] : candidates) {
      if (std::llabs(h * w - total_pixels) < diff) {
        height = h;
        width = w;
        diff = std::llabs(h * w - total_pixels);
      }
    }
    bool duplicate = false;
    for (const auto& b : main) duplicate |= b.height == height && b.width == width;
    if (duplicate || height <= 0 || width <= 0) continue;
    main.push_back({ratio, height, width});
    const std::string name(ratio);
    const size_t colon = name.find(':');
    const std::string flipped = name.substr(colon + 1) + ":" + name.substr(0, colon);
    bool replaced = false;
    for (auto& v : vertical)
      if (v.ratio == flipped) v = {flipped, width, height}, replaced = true;
    if (!replaced) vertical.push_back({flipped, width, height});
  }
  // dict.update(vertical): existing keys keep their place, new keys go to the end.
  for (const auto& v : vertical) {
    bool found = false;
    for (auto& b : main)
      if (b.ratio == v.ratio) b = v, found = true;
    if (!found) main.push_back(v);
  }
  return main;
}

std::vector<AspectBucket> resolution_buckets(const Resolution& resolution, int64_t multiple) {
  std::vector<AspectBucket> all = aspect_ratio_buckets(resolution.pixels, multiple);
  if (all.empty()) fail("resolution '", resolution.name, "' is too small for this model");
  if (resolution.setting == "max") {
    size_t best = 0;
    for (size_t i = 1; i < all.size(); ++i)
      if (all[i].height * all[i].width > all[best].height * all[best].width) best = i;
    return {all[best]};
  }
  if (resolution.setting.rfind("ar", 0) == 0) {
    const std::string ratio = resolution.setting.substr(2);
    for (const auto& b : all)
      if (b.ratio == ratio) return {b};
    std::string known;
    for (const auto& b : all) known += (known.empty() ? "" : ", ") + b.ratio;
    fail("resolution '", resolution.name, "': no aspect ratio ", ratio, " (known: ", known, ")");
  }
  return all;
}

const AspectBucket& closest_bucket(int64_t height, int64_t width,
                                   const std::vector<AspectBucket>& buckets) {
  if (buckets.empty()) fail("no aspect-ratio buckets to choose from");
  const double ar = static_cast<double>(height) / static_cast<double>(width);
  size_t best = 0;
  double best_diff = INFINITY;
  for (size_t i = 0; i < buckets.size(); ++i) {
    const auto [w, h] = split_ratio(buckets[i].ratio);
    const double diff = std::abs(ar - h / w);
    if (diff < best_diff) best = i, best_diff = diff;
  }
  return buckets[best];
}

int64_t bucket_multiple(int64_t spatial_ratio) {
  return std::lcm<int64_t>(16, std::max<int64_t>(1, spatial_ratio));
}

ResizeCrop resize_crop_geometry(int64_t h, int64_t w, int64_t th, int64_t tw) {
  if (h < 1 || w < 1 || th < 1 || tw < 1) fail("bad resize: ", h, "x", w, " -> ", th, "x", tw);
  ResizeCrop g;
  g.height = th;
  g.width = tw;
  const double rh = static_cast<double>(th) / static_cast<double>(h);
  const double rw = static_cast<double>(tw) / static_cast<double>(w);
  if (rh > rw) {
    g.scaled_height = th;
    g.scaled_width = round_half_even(static_cast<double>(w) * rh);
    g.left = (g.scaled_width - tw) / 2;
  } else {
    g.scaled_height = round_half_even(static_cast<double>(h) * rw);
    g.scaled_width = tw;
    g.top = (g.scaled_height - th) / 2;
  }
  return g;
}

ResizeCrop crop_to_multiple(int64_t h, int64_t w, int64_t multiple) {
  if (h < multiple || w < multiple)
    fail("frames of ", h, "x", w, " are smaller than the model's spatial compression (", multiple,
         " pixels)");
  ResizeCrop g;
  g.scaled_height = h;
  g.scaled_width = w;
  g.height = h / multiple * multiple;
  g.width = w / multiple * multiple;
  g.top = (h - g.height) / 2;
  g.left = (w - g.width) / 2;
  return g;
}

namespace {

// torch's upsample_bilinear2d source indices and weights (align_corners=False), in float.
struct LinearTaps {
  std::vector<int64_t> i0, i1;
  std::vector<float> l0, l1;
};

LinearTaps linear_taps(int64_t in, int64_t out, int64_t first, int64_t count) {
  LinearTaps t;
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = first; o < first + count; ++o) {
    float src = scale * (static_cast<float>(o) + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    const int64_t i0 = static_cast<int64_t>(src);
    const float lambda = std::min(std::max(src - static_cast<float>(i0), 0.0f), 1.0f);
    t.i0.push_back(i0);
    t.i1.push_back(i0 + (i0 < in - 1 ? 1 : 0));
    t.l0.push_back(1.0f - lambda);
    t.l1.push_back(lambda);
  }
  return t;
}

}  // namespace

void resize_crop_frame(const uint8_t* rgb, int64_t h, int64_t w, const ResizeCrop& g, float* out,
                       int64_t plane_stride) {
  const int64_t H = g.height, W = g.width;
  if (!g.resizes(h, w)) {
    parallel_for(H, 16, [&](int64_t y0, int64_t y1) {
      for (int64_t y = y0; y < y1; ++y) {
        const uint8_t* row = rgb + ((y + g.top) * w + g.left) * 3;
        for (int64_t c = 0; c < 3; ++c) {
          float* o = out + c * plane_stride + y * W;
          for (int64_t x = 0; x < W; ++x)
            o[x] = (static_cast<float>(row[x * 3 + c]) / 255.0f - 0.5f) / 0.5f;
        }
      }
    });
    return;
  }
  const LinearTaps ty = linear_taps(h, g.scaled_height, g.top, H);
  const LinearTaps tx = linear_taps(w, g.scaled_width, g.left, W);
  parallel_for(H, 8, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const uint8_t* r0 = rgb + ty.i0[y] * w * 3;
      const uint8_t* r1 = rgb + ty.i1[y] * w * 3;
      const float h0 = ty.l0[y], h1 = ty.l1[y];
      for (int64_t c = 0; c < 3; ++c) {
        float* o = out + c * plane_stride + y * W;
        for (int64_t x = 0; x < W; ++x) {
          const int64_t a = tx.i0[x] * 3 + c, b = tx.i1[x] * 3 + c;
          const float w0 = tx.l0[x], w1 = tx.l1[x];
          const float v00 = static_cast<float>(r0[a]) / 255.0f,
                      v01 = static_cast<float>(r0[b]) / 255.0f;
          const float v10 = static_cast<float>(r1[a]) / 255.0f,
                      v11 = static_cast<float>(r1[b]) / 255.0f;
          const float v = h0 * (w0 * v00 + w1 * v01) + h1 * (w0 * v10 + w1 * v11);
          o[x] = (v - 0.5f) / 0.5f;
        }
      }
    }
  });
}

}  // namespace vvae
