#include "vvae/clip.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
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

namespace {

// Gets every decoded frame that the clip may use, before the final choice: its index in the
// video and its RGB pixels at the source size, with the clip as far as it is known (its video
// and geometry).
using KeepFrame = std::function<void(const Clip& clip, int64_t index, const uint8_t* rgb)>;

// One pass over the video: which frames make the clip, its size and its notes (everything of
// the Clip but x). `keep` (when set) gets the frames the clip may use, to hold them: the frames
// then count against the memory that is available.
Clip scan_clip(const std::string& path, const ClipOptions& options, const ShapeRules& rules,
               const KeepFrame& keep) {
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
  // Held frames are kept in memory (twice, briefly, as the clip tensor is assembled): refuse a
  // request that cannot fit before decoding.
  const int64_t frame_bytes = 3 * g.height * g.width * int64_t{sizeof(float)};
  const int64_t declared =
      v.frame_count > 0 ? (v.frame_count + clip.interval - 1) / clip.interval : 0;
  const int64_t asked = options.frames.num_frames;
  int64_t expected = v.still_image ? 1
                     : asked > 0   ? (declared > 0 ? std::min(asked, declared) : asked)
                                   : std::max<int64_t>(declared, 1);
  expected = std::min(expected, limits::kMaxFrames);
  const auto check_fits = [&](int64_t frames) {
    if (keep)
      check_memory_fits(2 * frames * frame_bytes, cat("reading ", frames, " frames of ",
                                                      hw(g.height, g.width), " from '", path, "'"));
  };
  check_fits(expected);
  int64_t next_check = 2 * expected;  // a stream longer than it declares
  std::vector<uint8_t> rgb(static_cast<size_t>(v.height * v.width * 3));
  int64_t wanted = 0;
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
      if (wanted >= limits::kMaxFrames)
        fail("'", path, "' has more than ", limits::kMaxFrames, " frames at interval ",
             clip.interval, " (vvae's limit for one clip): pass --num-frames N");
      if (wanted >= next_check) {
        check_fits(2 * wanted);
        next_check *= 2;
      }
      if (keep) keep(clip, decoded, rgb.data());
      ++wanted;
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
  return clip;
}

}  // namespace

Clip load_clip(const std::string& path, const ClipOptions& options, const ShapeRules& rules) {
  std::vector<std::vector<float>> kept;
  std::vector<int64_t> kept_index;
  Clip clip =
      scan_clip(path, options, rules, [&](const Clip& c, int64_t index, const uint8_t* rgb) {
        const ResizeCrop& g = c.geometry;
        const int64_t plane = g.height * g.width;
        kept.emplace_back(static_cast<size_t>(3 * plane));
        resize_crop_frame(rgb, c.video.height, c.video.width, g, kept.back().data(), plane);
        kept_index.push_back(index);
      });
  const ResizeCrop& g = clip.geometry;
  const int64_t valid = static_cast<int64_t>(clip.indices.size()), plane = g.height * g.width;
  clip.x = Tensor::empty({1, 3, valid, g.height, g.width});
  float* out = clip.x.data();
  for (int64_t t = 0; t < valid; ++t) {
    const auto it = std::lower_bound(kept_index.begin(), kept_index.end(), clip.indices[t]);
    if (it == kept_index.end() || *it != clip.indices[t])
      fail("internal: frame ", clip.indices[t], " not kept");
    std::vector<float>& f = kept[static_cast<size_t>(it - kept_index.begin())];
    for (int64_t c = 0; c < 3; ++c)
      std::memcpy(out + (c * valid + t) * plane, f.data() + c * plane,
                  static_cast<size_t>(plane) * sizeof(float));
    std::vector<float>().swap(f);
  }
  return clip;
}

// The second pass decodes the video again in order and converts the clip's frames as they are
// asked for; the window holds the frames from the last span's first on.
struct ClipReader::Impl {
  Clip clip;
  VideoReader video;
  std::vector<uint8_t> rgb;
  int64_t decoded = 0;       // frames of the video decoded in this pass
  int64_t next = 0;          // the next clip frame to convert
  int64_t window_begin = 0;  // the clip frame window.front() holds
  std::deque<std::vector<float>> window;

  Impl(Clip c) : clip(std::move(c)), video(clip.source) {
    const VideoInfo& now = video.info();
    if (now.width != clip.video.width || now.height != clip.video.height)
      fail("'", clip.source, "' changed while it was read (its frames are ", now.width, "x",
           now.height, " now, ", clip.video.width, "x", clip.video.height, " before)");
    rgb.resize(static_cast<size_t>(now.height * now.width * 3));
  }

  // Converts clip frames until `end` is in the window.
  void fill(int64_t end) {
    const ResizeCrop& g = clip.geometry;
    const int64_t plane = g.height * g.width;
    while (next < end) {
      const int64_t wanted = clip.indices[static_cast<size_t>(next)];
      while (decoded <= wanted) {
        if (!video.next(rgb.data()))
          fail("'", clip.source, "' ended at frame ", decoded, " on its second reading (it had ",
               clip.source_frames, " frames): it changed while it was read");
        ++decoded;
      }
      window.emplace_back(static_cast<size_t>(3 * plane));
      resize_crop_frame(rgb.data(), clip.video.height, clip.video.width, g, window.back().data(),
                        plane);
      ++next;
    }
  }
};

ClipReader::ClipReader(const std::string& path, const ClipOptions& options, const ShapeRules& rules)
    : impl_(std::make_unique<Impl>(scan_clip(path, options, rules, nullptr))) {}
ClipReader::ClipReader(const Clip& planned) : impl_(std::make_unique<Impl>(planned)) {
  if (planned.indices.empty() || planned.x.defined())
    fail("internal: a ClipReader reads a clip another ClipReader planned");
}
ClipReader::~ClipReader() = default;
ClipReader::ClipReader(ClipReader&&) noexcept = default;
ClipReader& ClipReader::operator=(ClipReader&&) noexcept = default;

const Clip& ClipReader::clip() const {
  return impl_->clip;
}

Shape ClipReader::shape() const {
  const Clip& c = impl_->clip;
  return {1, 3, static_cast<int64_t>(c.indices.size()), c.geometry.height, c.geometry.width};
}

Tensor ClipReader::read(int64_t begin, int64_t end) {
  Impl& r = *impl_;
  const int64_t frames = static_cast<int64_t>(r.clip.indices.size());
  if (begin < r.window_begin || begin >= end || end > frames)
    fail("internal: clip frames [", begin, ", ", end, ") asked after frame ", r.window_begin,
         " of ", frames);
  // The window holds clip frames [window_begin, next): drop those before `begin`; frames no span
  // asks for are decoded but not converted.
  while (r.window_begin < begin && !r.window.empty()) {
    r.window.pop_front();
    ++r.window_begin;
  }
  if (r.window.empty()) r.window_begin = r.next = std::max(r.next, begin);
  r.fill(end);
  const int64_t n = end - begin, plane = r.clip.geometry.height * r.clip.geometry.width;
  Tensor x = Tensor::empty({1, 3, n, r.clip.geometry.height, r.clip.geometry.width});
  for (int64_t t = 0; t < n; ++t) {
    const std::vector<float>& f = r.window[static_cast<size_t>(begin - r.window_begin + t)];
    for (int64_t c = 0; c < 3; ++c)
      std::memcpy(x.data() + (c * n + t) * plane, f.data() + c * plane,
                  static_cast<size_t>(plane) * sizeof(float));
  }
  return x;
}

FrameReader ClipReader::frames() {
  return [this](int64_t begin, int64_t end) { return read(begin, end); };
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
