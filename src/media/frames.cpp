#include "media/frames.hpp"

#include <algorithm>
#include <cmath>

#include "vvae/error.hpp"
#include "vvae/limits.hpp"

namespace vvae {

int64_t fps_interval(double fps, double fps_max) {
  if (!(fps > 0) || !(fps_max > 0) || !std::isfinite(fps)) return 1;
  if (fps < fps_max) return 1;
  const double interval = std::ceil(fps / fps_max);
  if (!(interval <= static_cast<double>(limits::kMaxFrameInterval)))
    fail("sampling ", fps, " fps down to --fps-max ", fps_max, " takes every ", interval,
         "th frame; vvae's limit on the sampling interval is ", limits::kMaxFrameInterval);
  return static_cast<int64_t>(interval);
}

FrameSampling frame_sampling(double source_fps, const FrameRequest& request) {
  limits::check_range(request.frame_interval, 1, limits::kMaxFrameInterval, "--frame-interval");
  limits::check_range(request.num_frames, 0, limits::kMaxFrames, "--num-frames");
  if (request.fps_max != 0 && !(request.fps_max >= limits::kMinFpsMax && request.fps_max <= 1e6))
    fail("--fps-max is ", request.fps_max, "; it must be in [", limits::kMinFpsMax,
         ", 1000000] (vvae's limit)");
  FrameSampling s;
  s.interval = fps_interval(source_fps, request.fps_max) * request.frame_interval;
  if (s.interval > limits::kMaxFrameInterval)
    fail("the sampling interval ", s.interval, " (from --fps-max and --frame-interval) is above ",
         "vvae's limit of ", limits::kMaxFrameInterval);
  s.fps = source_fps > 0 ? source_fps / static_cast<double>(s.interval) : 0;
  return s;
}

std::vector<int64_t> linspace_indices(int64_t start, int64_t stop, int64_t num) {
  std::vector<int64_t> out;
  if (num <= 0) return out;
  if (num == 1) return {start};
  const double step = static_cast<double>(stop - start) / static_cast<double>(num - 1);
  for (int64_t i = 0; i < num; ++i) {
    const double v = i == num - 1 ? static_cast<double>(stop)
                                  : static_cast<double>(i) * step + static_cast<double>(start);
    out.push_back(static_cast<int64_t>(v));
  }
  return out;
}

FrameSelector::FrameSelector(int64_t num_frames, int64_t interval)
    : num_frames_(num_frames), interval_(std::max<int64_t>(1, interval)) {
  limits::check_range(num_frames_, 0, limits::kMaxFrames, "the number of frames");
  limits::check_range(interval_, 1, limits::kMaxFrameInterval, "the sampling interval");
  if (num_frames_ > 0) spread_ = linspace_indices(0, num_frames_ * interval_ - 1, num_frames_);
}

bool FrameSelector::wanted(int64_t index) const {
  if (index % interval_ == 0) return num_frames_ == 0 || index < num_frames_ * interval_;
  return std::binary_search(spread_.begin(), spread_.end(), index);
}

bool FrameSelector::done(int64_t decoded) const {
  return num_frames_ > 0 && decoded >= num_frames_ * interval_;
}

std::vector<int64_t> FrameSelector::select(int64_t decoded, std::string* note) const {
  if (num_frames_ > 0 && decoded >= num_frames_ * interval_) return spread_;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < decoded; i += interval_) out.push_back(i);
  if (num_frames_ > 0 && note != nullptr)
    *note = cat("asked for ", num_frames_, " frames at interval ", interval_, " but the video has ",
                decoded, " frames: taking ", out.size());
  return out;
}

int64_t valid_frame_count(int64_t n, int64_t time_ratio, bool causal) {
  if (n < 1) return 0;
  if (time_ratio <= 1) return n;
  if (causal) return 1 + (n - 1) / time_ratio * time_ratio;
  return n < time_ratio ? 1 : n / time_ratio * time_ratio;
}

std::string frame_count_rule(int64_t time_ratio, bool causal) {
  if (time_ratio <= 1) return "any";
  if (causal) return cat("1 + ", time_ratio, "k");
  return cat("a multiple of ", time_ratio, ", or 1");
}

}  // namespace vvae
