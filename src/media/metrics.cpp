#include "vvae/metrics.hpp"

#include <algorithm>
#include <cmath>

#include "core/threads.hpp"
#include "vvae/error.hpp"

namespace vvae {

double frame_psnr(const uint8_t* a, const uint8_t* b, int64_t height, int64_t width) {
  const int64_t n = height * width * 3;
  double sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    sq += d * d;
  }
  const double mse = sq / static_cast<double>(n);
  if (mse <= 0) return kPsnrCap;
  return std::min(kPsnrCap, 10.0 * std::log10(255.0 * 255.0 / mse));
}

namespace {

std::vector<double> gaussian_window(int64_t size, double sigma) {
  std::vector<double> g(static_cast<size_t>(size));
  const double centre = static_cast<double>(size / 2);
  double sum = 0;
  for (int64_t i = 0; i < size; ++i) {
    const double d = static_cast<double>(i) - centre;
    g[i] = std::exp(-d * d / (2 * sigma * sigma));
    sum += g[i];
  }
  for (double& v : g) v /= sum;
  return g;
}

// Valid separable filtering of a (h, w) plane with window g: (h - k + 1, w - k + 1).
std::vector<double> filter_valid(const std::vector<double>& in, int64_t h, int64_t w,
                                 const std::vector<double>& g) {
  const int64_t k = static_cast<int64_t>(g.size());
  const int64_t oh = h - k + 1, ow = w - k + 1;
  std::vector<double> rows(static_cast<size_t>(h * ow));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i) s += g[i] * in[y * w + x + i];
      rows[y * ow + x] = s;
    }
  std::vector<double> out(static_cast<size_t>(oh * ow));
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i) s += g[i] * rows[(y + i) * ow + x];
      out[y * ow + x] = s;
    }
  return out;
}

}  // namespace

double frame_ssim(const uint8_t* a, const uint8_t* b, int64_t height, int64_t width) {
  int64_t k = std::min<int64_t>({11, height, width});
  if (k % 2 == 0) --k;
  const std::vector<double> g = gaussian_window(k, 1.5);
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  const int64_t n = height * width;
  double total = 0;
  for (int64_t c = 0; c < 3; ++c) {
    std::vector<double> x(n), y(n), xx(n), yy(n), xy(n);
    for (int64_t i = 0; i < n; ++i) {
      x[i] = a[i * 3 + c];
      y[i] = b[i * 3 + c];
      xx[i] = x[i] * x[i];
      yy[i] = y[i] * y[i];
      xy[i] = x[i] * y[i];
    }
    const auto mx = filter_valid(x, height, width, g), my = filter_valid(y, height, width, g);
    const auto sxx = filter_valid(xx, height, width, g), syy = filter_valid(yy, height, width, g);
    const auto sxy = filter_valid(xy, height, width, g);
    double sum = 0;
    for (size_t i = 0; i < mx.size(); ++i) {
      const double vx = sxx[i] - mx[i] * mx[i], vy = syy[i] - my[i] * my[i];
      const double cov = sxy[i] - mx[i] * my[i];
      sum += ((2 * mx[i] * my[i] + c1) * (2 * cov + c2)) /
             ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
    }
    total += sum / static_cast<double>(mx.size());
  }
  return total / 3.0;
}

ClipMetrics clip_metrics(const RgbFrames& a, const RgbFrames& b) {
  if (a.frames != b.frames || a.height != b.height || a.width != b.width)
    fail("metrics: clips differ in shape (", a.frames, "x", a.height, "x", a.width, " vs ",
         b.frames, "x", b.height, "x", b.width, ")");
  ClipMetrics m;
  m.psnr.resize(static_cast<size_t>(a.frames));
  m.ssim.resize(static_cast<size_t>(a.frames));
  parallel_for(a.frames, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      m.psnr[t] = frame_psnr(a.frame(t), b.frame(t), a.height, a.width);
      m.ssim[t] = frame_ssim(a.frame(t), b.frame(t), a.height, a.width);
    }
  });
  return metrics_of_frames(std::move(m.psnr), std::move(m.ssim));
}

ClipMetrics metrics_of_frames(std::vector<double> psnr, std::vector<double> ssim) {
  if (psnr.size() != ssim.size())
    fail("metrics: ", psnr.size(), " PSNRs for ", ssim.size(), " SSIMs");
  ClipMetrics m;
  m.psnr = std::move(psnr);
  m.ssim = std::move(ssim);
  const double frames = static_cast<double>(m.psnr.size());
  for (size_t t = 0; t < m.psnr.size(); ++t) {
    m.mean_psnr += m.psnr[t] / frames;
    m.mean_ssim += m.ssim[t] / frames;
  }
  return m;
}

LatentMoments latent_moments(const float* z, int64_t n) {
  LatentMoments m;
  if (n <= 0) return m;
  double s = 0, sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = z[i];
    s += v;
    sq += v * v;
  }
  m.mean = s / static_cast<double>(n);
  m.mean_sq = sq / static_cast<double>(n);
  return m;
}

void RunningLatentStats::add(const LatentMoments& m) {
  ++n_;
  sum_ += m.mean;
  const double c = sum_ / static_cast<double>(n_);
  var_ += m.mean_sq - 2 * c * m.mean + c * c;
}

double RunningLatentStats::mean() const {
  return n_ ? sum_ / static_cast<double>(n_) : 0.0;
}
double RunningLatentStats::std() const {
  return n_ ? std::sqrt(std::max(0.0, var_ / static_cast<double>(n_))) : 0.0;
}

}  // namespace vvae
