#pragma once
// Frame geometry as Open-Sora's loader does it (opensora/datasets/aspect.py, bucket.py,
// video_transforms.py), as pure functions.
//
// A resolution name gives a pixel budget: "256px" is 256 * 256 pixels, "720p" is
// 720 * 720 * 16 / 9 (Open-Sora's get_num_pexels_from_name); vvae also reads a bare number N as
// "Npx". An optional setting follows: "512px_ar1:1" keeps only the 1:1 bucket (Open-Sora's VAE
// inference configs use this), "256px_max" the bucket with the most pixels.
//
// The buckets are get_aspect_ratios_dict(pixels) with training=True: for each aspect ratio of
// ASPECT_RATIO_LD_LIST a (height, width) in multiples of D, adjusted by +-D towards the budget,
// duplicates dropped, then the vertical twins added. D is Open-Sora's AE_SPATIAL_COMPRESSION:
// 16 by default, 32 in its high-compression (DC-AE) configs; vvae uses lcm(16, spatial ratio)
// so every bucket is a multiple of the family's spatial ratio.
//
// A clip goes to the bucket whose height/width ratio is closest to its own (get_closest_ratio,
// first in dictionary order on ties), then resize_crop scales it (bilinear, as
// torch.nn.functional.interpolate with align_corners=False, no antialiasing) until it covers the
// bucket and crops the middle (video_transforms.resize_crop_to_fill: the offset is
// floor((scaled - target) / 2)).

#include <cstdint>
#include <string>
#include <vector>

#include "vvae/clip.hpp"  // ResizeCrop

namespace vvae {

struct Resolution {
  int64_t pixels = 0;   // the pixel budget
  std::string setting;  // "", "max" or "ar<w>:<h>"
  std::string name;     // as given
};

// Parses "256px", "720p", "256", "512px_ar1:1", "256px_max"; throws Error otherwise.
Resolution parse_resolution(const std::string& text);

struct AspectBucket {
  std::string ratio;  // "16:9" (width:height)
  int64_t height = 0;
  int64_t width = 0;
};

// get_aspect_ratios_dict(total_pixels) with D = `multiple`, in dictionary order.
std::vector<AspectBucket> aspect_ratio_buckets(int64_t total_pixels, int64_t multiple = 16);
// The buckets of a resolution, after its setting; throws Error for an unknown aspect ratio.
std::vector<AspectBucket> resolution_buckets(const Resolution& resolution, int64_t multiple);
// get_closest_ratio: the bucket whose height/width is closest to height/width.
const AspectBucket& closest_bucket(int64_t height, int64_t width,
                                   const std::vector<AspectBucket>& buckets);
// The D vvae uses for a family with this spatial ratio: lcm(16, ratio).
int64_t bucket_multiple(int64_t spatial_ratio);

// Python's round() on a double: to nearest, ties to even.
int64_t round_half_even(double v);

// resize_crop_to_fill for a (h, w) frame and a (th, tw) target.
ResizeCrop resize_crop_geometry(int64_t h, int64_t w, int64_t th, int64_t tw);
// No resize: the middle crop to the largest multiple of `multiple` in each direction
// (offset floor((h - H) / 2)); throws Error when a side is smaller than `multiple`.
ResizeCrop crop_to_multiple(int64_t h, int64_t w, int64_t multiple);

// Applies `g` to an RGB frame (h, w, 3 bytes) and writes the (g.height, g.width) window,
// channels-first, normalised as Open-Sora does: v = byte / 255, bilinear in float32 when
// resizing, then (v - 0.5) / 0.5. `out` holds 3 planes of g.height * g.width floats, each
// `plane_stride` floats apart.
void resize_crop_frame(const uint8_t* rgb, int64_t h, int64_t w, const ResizeCrop& g, float* out,
                       int64_t plane_stride);

}  // namespace vvae
