#pragma once
// A clip ready for a model: frames read from a video or image file, selected, resized and
// cropped to a shape the model accepts, as the (1, 3, T, H, W) tensor in [-1, 1] that
// Open-Sora's loader would produce; and the way back, to 8-bit RGB, as Open-Sora's save_sample.
//
// Frames (opensora/datasets/utils.py map_target_fps, temporal_random_crop): the sampling
// interval is frame_interval times ceil(fps / fps_max) (1 when the source runs slower);
// --num-frames n takes np.linspace(0, n * interval - 1, n) truncated, from frame 0 (upstream
// starts at random), or every interval-th frame of a shorter video; without it every
// interval-th frame. The count is then made valid for the model by dropping frames at the end.
//
// Size: --size HxW resize_crops to exactly that; --resolution resize_crops to the closest of
// Open-Sora's aspect-ratio buckets (bilinear, align_corners=False, then the middle crop); with
// neither the frames keep their size, cropped in the middle to multiples of the model's spatial
// ratio.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vvae/model.hpp"
#include "vvae/video.hpp"

namespace vvae {

// Which frames of a video make the clip (Open-Sora's loader settings).
struct FrameRequest {
  int64_t num_frames = 0;  // 0: every frame at the interval
  int64_t frame_interval = 1;
  double fps_max = 0;  // 0: no limit
};

// Scale (height, width) to (scaled_height, scaled_width), then crop the window at (top, left) of
// (height, width).
struct ResizeCrop {
  int64_t scaled_height = 0;
  int64_t scaled_width = 0;
  int64_t top = 0;
  int64_t left = 0;
  int64_t height = 0;
  int64_t width = 0;
  bool resizes(int64_t source_height, int64_t source_width) const {
    return scaled_height != source_height || scaled_width != source_width;
  }
};

struct ClipOptions {
  FrameRequest frames;
  std::string resolution;  // "" or a resolution name: 256, 256px, 720p, 512px_ar1:1, 256px_max
  int64_t height = 0;      // --size HxW (0: not given)
  int64_t width = 0;
  // Whether the user set anything a tensor input cannot honour.
  bool any_set() const {
    return frames.num_frames != 0 || frames.frame_interval != 1 || frames.fps_max != 0 ||
           !resolution.empty() || height != 0;
  }
};

// "256x448" -> {256, 448}; throws Error otherwise.
std::pair<int64_t, int64_t> parse_size(const std::string& text);

// The shapes a model accepts, from its ModelInfo; `accepts` (when set) asks the model itself,
// for rules ModelInfo does not spell out (the DC-AE takes 1 frame or at least 8).
struct ShapeRules {
  ShapeRules() = default;
  ShapeRules(int64_t time, bool causal, int64_t spatial,
             std::function<bool(const Shape&)> accept = {})
      : time_ratio(time), causal_time(causal), spatial_ratio(spatial), accepts(std::move(accept)) {}

  int64_t time_ratio = 1;
  bool causal_time = false;
  int64_t spatial_ratio = 1;
  std::function<bool(const Shape&)> accepts;
};
ShapeRules shape_rules(const ModelInfo& info);
// The same with `accepts` = a dry run of the model's encode (Model::plan_encode) succeeds;
// `model` must outlive the rules.
ShapeRules shape_rules(const Model& model);

struct Clip {
  Tensor x;  // (1, 3, T, H, W), values in [-1, 1]
  std::string source;
  VideoInfo video;                    // the source file
  int64_t source_frames = 0;          // frames in the source (0 when not known)
  std::vector<int64_t> indices;       // source frames used
  int64_t interval = 1;               // sampling interval
  double fps = 0;                     // of the clip: source fps / interval (0: unknown)
  ResizeCrop geometry;                // from the source frame size
  std::string bucket;                 // "16:9" when a resolution bucket was used
  std::vector<std::string> notes;     // what was done (frames, size), one line each
  std::vector<std::string> warnings;  // e.g. an alpha channel dropped
  // (from the frames and geometry: x is undefined in a ClipReader's clip)
  int64_t frames() const { return static_cast<int64_t>(indices.size()); }
  int64_t height() const { return geometry.height; }
  int64_t width() const { return geometry.width; }
};

// Reads `path` (video or image) into a clip for a model with these rules; throws Error.
Clip load_clip(const std::string& path, const ClipOptions& options, const ShapeRules& rules);

// A clip read as a model's tiles ask for it (Model::encode_streamed): a first pass over the
// video chooses the clip's frames, size and notes as load_clip does (without holding a frame),
// then the frames are decoded again, in order, as they are asked for. The reader holds the
// frames from the last span's first on: a temporal tile's worth, however long the clip.
class ClipReader {
 public:
  ClipReader(const std::string& path, const ClipOptions& options, const ShapeRules& rules);
  // Reads the frames of a clip another reader's first pass chose (`planned`: its clip()), from
  // the start: a second look at the same frames without a second first pass.
  explicit ClipReader(const Clip& planned);
  ~ClipReader();
  ClipReader(ClipReader&&) noexcept;
  ClipReader& operator=(ClipReader&&) noexcept;

  const Clip& clip() const;  // all of load_clip's Clip but x, which is left undefined
  Shape shape() const;       // the clip's (1, 3, T, H, W)
  // Clip frames [begin, end) as (1, 3, end - begin, H, W) in [-1, 1]; `begin` may not go back
  // before an earlier call's. Throws Error when the file changed since the first pass.
  Tensor read(int64_t begin, int64_t end);
  // read() as a Model::encode_streamed reader; the ClipReader must outlive it.
  FrameReader frames();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A clip from a safetensors file holding a (1, 3, T, H, W) tensor in [-1, 1] (tensor `name`,
// else "x", else its only tensor); its fps from the file's metadata when it has one.
Clip clip_from_tensor(const std::string& path, const std::string& name = "");

// Open-Sora's save_sample: clamp to [-1, 1], (x + 1) / 2 * 255 + 0.5, clamp, truncate, in
// float32. x is (B, 3, T, H, W); `batch` picks the clip.
RgbFrames tensor_to_rgb(const Tensor& x, int64_t batch = 0);
// The inverse for 8-bit frames: (byte / 255 - 0.5) / 0.5, as (1, 3, T, H, W).
Tensor rgb_to_tensor(const RgbFrames& frames);

// "29.97", "16": a frame rate as metadata records it (6 significant digits).
std::string format_fps(double fps);

}  // namespace vvae
