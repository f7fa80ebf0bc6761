#include "vvae/clip.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/threads.hpp"
#include "media/frames.hpp"
#include "media/geometry.hpp"
#include "vvae/error.hpp"
#include "vvae/latent.hpp"
#include "vvae/limits.hpp"
#include "vvae/memory.hpp"
#include "vvae/safetensors.hpp"

namespace vvae {

namespace fs = std::filesystem;

namespace {

// A whole string of decimal digits as a positive integer (false on anything else or overflow).
bool parse_positive(const std::string& text, int64_t* out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && *out >= 1;
}

}  // namespace

std::pair<int64_t, int64_t> parse_size(const std::string& text) {
  const size_t x = text.find_first_of("xX");
  int64_t h = 0, w = 0;
  if (x == std::string::npos || !parse_positive(text.substr(0, x), &h) ||
      !parse_positive(text.substr(x + 1), &w))
    fail("bad size '", text, "': expected HxW, e.g. 256x448");
  if (h > limits::kMaxSide || w > limits::kMaxSide)
    fail("--size ", text, " is larger than vvae's limit of ", limits::kMaxSide, " pixels a side");
  return {h, w};
}

ShapeRules shape_rules(const ModelInfo& info) {
  return {std::max<int64_t>(1, info.time_ratio), info.causal_time,
          std::max<int64_t>(1, info.spatial_ratio)};
}

ShapeRules shape_rules(const Model& model) {
  ShapeRules r = shape_rules(model.info());
  const Model* m = &model;
  r.accepts = [m](const Shape& shape) {
    try {
      m->plan_encode(shape);
      return true;
    } catch (const Error&) {
      return false;
    }
  };
  return r;
}

namespace {

std::string hw(int64_t h, int64_t w) {
  return cat(h, "x", w);
}

std::string plural(int64_t n, const std::string& word) {
  return cat(n, " ", word, n == 1 ? "" : "s");
}

std::string ordinal(int64_t n) {
  if (n == 1) return "every frame";
  return cat("every ", n,
             n % 10 == 2 && n % 100 != 12   ? "nd"
             : n % 10 == 3 && n % 100 != 13 ? "rd"
                                            : "th",
             " frame");
}

// Chooses the geometry and says what it does.
ResizeCrop choose_geometry(const VideoInfo& v, const ClipOptions& o, const ShapeRules& r,
                           Clip& clip) {
  const int64_t h = v.height, w = v.width, sr = r.spatial_ratio;
  if (o.height > 0) {
    if (o.height % sr != 0 || o.width % sr != 0)
      fail("--size ", hw(o.height, o.width), " is not a multiple of the model's spatial ratio ", sr,
           " (try ", hw(std::max(sr, o.height / sr * sr), std::max(sr, o.width / sr * sr)), ")");
    const ResizeCrop g = resize_crop_geometry(h, w, o.height, o.width);
    clip.notes.push_back(cat("size ", hw(h, w), " -> ", hw(g.height, g.width),
                             " (resize_crop: scaled to ", hw(g.scaled_height, g.scaled_width),
                             ", crop at y=", g.top, " x=", g.left, ")"));
    return g;
  }
  if (!o.resolution.empty()) {
    const Resolution res = parse_resolution(o.resolution);
    const auto buckets = resolution_buckets(res, bucket_multiple(sr));
    const AspectBucket& b = closest_bucket(h, w, buckets);
    clip.bucket = b.ratio;
    const ResizeCrop g = resize_crop_geometry(h, w, b.height, b.width);
    const bool up = g.scaled_height > h || g.scaled_width > w;
    clip.notes.push_back(cat("size ", hw(h, w), " -> ", hw(g.height, g.width), " (", res.name,
                             " bucket ", b.ratio, "; resize_crop: scaled to ",
                             hw(g.scaled_height, g.scaled_width), up ? " (upscaled)" : "",
                             ", crop at y=", g.top, " x=", g.left, ")"));
    return g;
  }
  const ResizeCrop g = crop_to_multiple(h, w, sr);
  if (g.height != h || g.width != w)
    clip.notes.push_back(cat("size ", hw(h, w), " -> ", hw(g.height, g.width),
                             " (cropped in the middle to multiples of ", sr, ": trimmed ",
                             plural(h - g.height, "row"), ", ", plural(w - g.width, "column"),
                             ")"));
  return g;
}

}  // namespace

Clip load_clip(const std::string& path, const ClipOptions& options, const ShapeRules& rules) {
  Clip clip;
  clip.source = path;
  VideoReader reader(path);
  clip.video = reader.info();
  const VideoInfo& v = clip.video;
  if (v.still_image && (options.frames.num_frames > 1 || options.frames.frame_interval > 1))
    clip.notes.push_back("a still image: one frame");
  const FrameSampling sampling = frame_sampling(v.fps, options.frames);
  clip.interval = v.still_image ? 1 : sampling.interval;
  clip.fps = v.still_image ? 0 : sampling.fps;
  clip.geometry = choose_geometry(v, options, rules, clip);
  const ResizeCrop& g = clip.geometry;

  const FrameSelector selector(v.still_image ? 0 : options.frames.num_frames, clip.interval);
  const int64_t plane = g.height * g.width;
  // The frames are kept in memory (twice, briefly, as the clip tensor is assembled): refuse a
  // request that cannot fit before decoding, and any clip longer than vvae's limit.
  const int64_t frame_bytes = 3 * plane * int64_t{sizeof(float)};
  const int64_t declared =
      v.frame_count > 0 ? (v.frame_count + clip.interval - 1) / clip.interval : 0;
  const int64_t asked = options.frames.num_frames;
  int64_t expected = v.still_image ? 1
                     : asked > 0   ? (declared > 0 ? std::min(asked, declared) : asked)
                                   : std::max<int64_t>(declared, 1);
  expected = std::min(expected, limits::kMaxFrames);
  const auto check_fits = [&](int64_t frames) {
    check_memory_fits(2 * frames * frame_bytes, cat("reading ", frames, " frames of ",
                                                    hw(g.height, g.width), " from '", path, "'"));
  };
  check_fits(expected);
  size_t next_check = static_cast<size_t>(2 * expected);  // a stream longer than it declares
  std::vector<uint8_t> rgb(static_cast<size_t>(v.height * v.width * 3));
  std::vector<std::vector<float>> kept;
  std::vector<int64_t> kept_index;
  bool transparent = false;
  int64_t decoded = 0;
  bool reached_end = false;
  while (!selector.done(decoded)) {
    bool see_through = false;
    if (!reader.next(rgb.data(), &see_through)) {
      reached_end = true;
      break;
    }
    if (selector.wanted(decoded)) {
      if (static_cast<int64_t>(kept.size()) >= limits::kMaxFrames)
        fail("'", path, "' has more than ", limits::kMaxFrames, " frames at interval ",
             clip.interval, " (vvae's limit for one clip): pass --num-frames N");
      if (kept.size() >= next_check) {
        check_fits(static_cast<int64_t>(2 * kept.size()));
        next_check *= 2;
      }
      kept.emplace_back(static_cast<size_t>(3 * plane));
      resize_crop_frame(rgb.data(), v.height, v.width, g, kept.back().data(), plane);
      kept_index.push_back(decoded);
      transparent |= see_through;
    }
    ++decoded;
  }
  clip.source_frames = reached_end ? decoded : v.frame_count;
  if (transparent)
    clip.warnings.push_back(
        cat("'", path, "' has transparent pixels: the alpha channel is dropped"));

  std::string short_note;
  std::vector<int64_t> indices = selector.select(decoded, &short_note);
  if (!short_note.empty()) clip.notes.push_back(short_note);
  const int64_t picked = static_cast<int64_t>(indices.size());
  int64_t valid = valid_frame_count(picked, rules.time_ratio, rules.causal_time);
  // A count the rule allows but the model refuses: the next smaller one it takes (if any).
  std::string refused;
  auto takes = [&](int64_t n) { return rules.accepts({1, 3, n, g.height, g.width}); };
  if (rules.accepts && valid > 1 && !takes(valid)) {
    for (int64_t n = valid_frame_count(valid - 1, rules.time_ratio, rules.causal_time); n >= 1;
         n = valid_frame_count(n - 1, rules.time_ratio, rules.causal_time)) {
      if (takes(n)) {
        refused = cat(" (the model refuses ", valid, ")");
        valid = n;
        break;
      }
      if (n == 1) break;
    }
  }
  indices.resize(static_cast<size_t>(valid));
  clip.indices = indices;
  if (!v.still_image) {
    std::string frames = cat("frames ", v.fps > 0 ? "at " + format_fps(v.fps) + " fps" : "",
                             ": using ", valid, " (", ordinal(clip.interval));
    if (options.frames.num_frames > 0 && short_note.empty())
      frames += cat(", ", picked, " spread over ", picked * clip.interval);
    frames += ")";
    if (valid < picked)
      frames += cat("; trimmed ", picked - valid, " at the end: valid frame counts are ",
                    frame_count_rule(rules.time_ratio, rules.causal_time), refused);
    if (clip.fps > 0) frames += "; clip fps " + format_fps(clip.fps);
    clip.notes.push_back(frames);
  }

  clip.x = Tensor::empty({1, 3, valid, g.height, g.width});
  float* out = clip.x.data();
  for (int64_t t = 0; t < valid; ++t) {
    const auto it = std::lower_bound(kept_index.begin(), kept_index.end(), indices[t]);
    if (it == kept_index.end() || *it != indices[t])
      fail("internal: frame ", indices[t], " not kept");
    std::vector<float>& f = kept[static_cast<size_t>(it - kept_index.begin())];
    for (int64_t c = 0; c < 3; ++c)
      std::memcpy(out + (c * valid + t) * plane, f.data() + c * plane,
                  static_cast<size_t>(plane) * sizeof(float));
    std::vector<float>().swap(f);
  }
  return clip;
}

Clip clip_from_tensor(const std::string& path, const std::string& name) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  Clip clip;
  clip.source = path;
  clip.x = read_named_tensor(file, name, "x");
  const Shape& s = clip.x.shape();
  if (s.size() != 5 || s[0] != 1 || s[1] != 3)
    fail("'", path, "': a clip tensor must be (1, 3, T, H, W), got ", to_string(s));
  clip.fps = metadata_fps(file.metadata());
  clip.video.height = s[3];
  clip.video.width = s[4];
  clip.video.fps = clip.fps;
  clip.source_frames = s[2];
  for (int64_t t = 0; t < s[2]; ++t) clip.indices.push_back(t);
  clip.geometry = {s[3], s[4], 0, 0, s[3], s[4]};
  return clip;
}

RgbFrames tensor_to_rgb(const Tensor& x, int64_t batch) {
  if (x.rank() != 5 || x.dim(1) != 3)
    fail("a clip tensor must be (B, 3, T, H, W), got ", to_string(x.shape()));
  if (batch < 0 || batch >= x.dim(0)) fail("no clip ", batch, " in a batch of ", x.dim(0));
  const int64_t T = x.dim(2), H = x.dim(3), W = x.dim(4), plane = H * W;
  RgbFrames out(T, H, W);
  const float* base = x.data() + batch * 3 * T * plane;
  parallel_for(T * H, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = r / H, y = r % H;
      uint8_t* o = out.frame(t) + y * W * 3;
      for (int64_t c = 0; c < 3; ++c) {
        const float* in = base + (c * T + t) * plane + y * W;
        for (int64_t xx = 0; xx < W; ++xx) {
          float v = in[xx];
          if (std::isnan(v)) v = -1.0f;
          v = std::min(std::max(v, -1.0f), 1.0f);
          v = (v + 1.0f) / 2.0f;
          v = std::min(std::max(v * 255.0f + 0.5f, 0.0f), 255.0f);
          o[xx * 3 + c] = static_cast<uint8_t>(v);
        }
      }
    }
  });
  return out;
}

Tensor rgb_to_tensor(const RgbFrames& frames) {
  const int64_t T = frames.frames, H = frames.height, W = frames.width, plane = H * W;
  Tensor x = Tensor::empty({1, 3, T, H, W});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < plane; ++i)
        x.data()[(c * T + t) * plane + i] =
            (static_cast<float>(frames.frame(t)[i * 3 + c]) / 255.0f - 0.5f) / 0.5f;
  return x;
}

std::string format_fps(double fps) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", fps);
  return buf;
}

}  // namespace vvae
