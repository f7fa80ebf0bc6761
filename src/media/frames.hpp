#pragma once
// Which frames of a video a clip is made of, as Open-Sora's loader picks them
// (opensora/datasets/utils.py map_target_fps, temporal_random_crop), as pure functions.
//
// The sampling interval is frame_interval times map_target_fps's interval: ceil(fps / fps_max)
// when the source runs at fps_max or faster, else 1. The clip's frame rate is the source's
// divided by that interval.
//
// With --num-frames n, Open-Sora takes np.linspace(start, start + n * interval - 1, n,
// dtype=int) from a random start; vvae starts at frame 0 (deterministic). When the video is
// shorter than n * interval (Open-Sora's buckets never pick such a clip), vvae takes every
// interval-th frame there is. Without --num-frames it takes every interval-th frame.
//
// The count is then made valid for the family by dropping frames at the end: the largest
// 1 + time_ratio * k for causal families (HunyuanVideo: 1 + 4k), else the largest multiple of
// time_ratio, or a single frame when there are fewer than time_ratio.

#include <cstdint>
#include <string>
#include <vector>

#include "vvae/clip.hpp"  // FrameRequest

namespace vvae {

// map_target_fps: the interval that brings `fps` to at most `fps_max` (1 when either is unknown).
int64_t fps_interval(double fps, double fps_max);

struct FrameSampling {
  int64_t interval = 1;  // fps_interval(...) * frame_interval
  double fps = 0;        // source fps / interval; 0 when the source's is unknown
};
FrameSampling frame_sampling(double source_fps, const FrameRequest& request);

// numpy.linspace(start, stop, num, dtype=int): evenly spaced, truncated towards zero.
std::vector<int64_t> linspace_indices(int64_t start, int64_t stop, int64_t num);

// Picks frames while a video is decoded in order, without knowing its length in advance.
class FrameSelector {
 public:
  FrameSelector(int64_t num_frames, int64_t interval);
  // Whether decoded frame `index` may be selected (keep it until select()).
  bool wanted(int64_t index) const;
  // True once `decoded` frames are enough: no later frame can be selected.
  bool done(int64_t decoded) const;
  // The selected indices once `decoded` frames were read (the whole video, or done()).
  // `note` says when the video was too short for the request.
  std::vector<int64_t> select(int64_t decoded, std::string* note = nullptr) const;

 private:
  int64_t num_frames_;
  int64_t interval_;
  std::vector<int64_t> spread_;  // the linspace indices when the video is long enough
};

// The largest valid frame count <= n (n >= 1).
int64_t valid_frame_count(int64_t n, int64_t time_ratio, bool causal);
// The rule in words: "1 + 4k", "a multiple of 4, or 1", "any".
std::string frame_count_rule(int64_t time_ratio, bool causal);

}  // namespace vvae
