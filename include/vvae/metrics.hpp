#pragma once
// Reconstruction metrics on 8-bit RGB frames, and the latent statistics of
// Open-Sora's scripts/vae/stats.py.
//
// PSNR per frame: 10 log10(255^2 / MSE) over all pixels and channels of the frame, capped at
// 100 dB for identical frames; a clip's PSNR is the mean over its frames.
// SSIM per frame (Wang et al. 2004): an 11x11 Gaussian window with sigma 1.5 (normalised to sum
// 1), C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, statistics over every window position inside
// the frame ("valid", no padding), the mean of the SSIM map per channel, averaged over R, G, B;
// a clip's SSIM is the mean over its frames. Frames smaller than 11 pixels use a window of the
// largest odd size that fits (same sigma). Everything is computed in double precision.

#include <cstdint>
#include <vector>

#include "vvae/video.hpp"

namespace vvae {

constexpr double kPsnrCap = 100.0;

double frame_psnr(const uint8_t* a, const uint8_t* b, int64_t height, int64_t width);
double frame_ssim(const uint8_t* a, const uint8_t* b, int64_t height, int64_t width);

struct ClipMetrics {
  std::vector<double> psnr;  // per frame
  std::vector<double> ssim;  // per frame
  double mean_psnr = 0;
  double mean_ssim = 0;
};
ClipMetrics clip_metrics(const RgbFrames& a, const RgbFrames& b);
// A clip's metrics from its per-frame values (a clip measured in parts): the means as
// clip_metrics takes them.
ClipMetrics metrics_of_frames(std::vector<double> psnr, std::vector<double> ssim);

// The first two moments of one latent, enough to replay stats.py's running formula later in any
// grouping (a resumed run adds the clips a previous run finished).
struct LatentMoments {
  double mean = 0;     // mean(z)
  double mean_sq = 0;  // mean(z^2)
};
LatentMoments latent_moments(const float* z, int64_t n);

// scripts/vae/stats.py, one clip per batch:
//   n += 1; running_sum += mean(z); running_var += mean((z - running_sum / n)^2)
//   mean = running_sum / n; std = sqrt(running_var / n)
// with mean((z - c)^2) = mean(z^2) - 2 c mean(z) + c^2.
class RunningLatentStats {
 public:
  void add(const LatentMoments& m);
  int64_t count() const { return n_; }
  double mean() const;
  double std() const;

 private:
  int64_t n_ = 0;
  double sum_ = 0;
  double var_ = 0;
};

}  // namespace vvae
