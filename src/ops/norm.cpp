#include "ops/norm.hpp"

#include <cmath>
#include <vector>

#include "core/dry_run.hpp"
#include "core/threads.hpp"
#include "ops/elementwise.hpp"
#include "ops/vector_math.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

// Positions per partial sum: fixed, so results do not depend on the thread count.
constexpr int64_t kRowsPerChunk = 256;

// A double mean carried as two floats (hi + lo): x - hi - lo keeps the deviation accurate when
// the mean is large against the spread, where a plain float mean would lose it.
struct SplitMean {
  std::vector<float> hi, lo;
};

// Per-channel sums over `rows` rows of `channels` values of (x - center), or of its square,
// accumulated in float within a chunk and in double across chunks. Centering first keeps float
// sums accurate when the data sit far from zero.
std::vector<double> channel_sums(const float* x, int64_t rows, int64_t channels,
                                 const SplitMean& center, bool squared) {
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  std::vector<double> partial(static_cast<size_t>(chunks * channels));
  const float* hi = center.hi.data();
  const float* lo = center.lo.data();
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<float> acc(static_cast<size_t>(channels));
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      const int64_t r1 = std::min(rows, (chunk + 1) * kRowsPerChunk);
      for (int64_t r = chunk * kRowsPerChunk; r < r1; ++r) {
        const float* row = x + r * channels;
        if (squared) {
          for (int64_t c = 0; c < channels; ++c) {
            const float d = (row[c] - hi[c]) - lo[c];
            acc[c] += d * d;
          }
        } else {
          for (int64_t c = 0; c < channels; ++c) acc[c] += row[c] - hi[c];
        }
      }
      double* out = partial.data() + chunk * channels;
      for (int64_t c = 0; c < channels; ++c) out[c] = acc[c];
    }
  });
  std::vector<double> sums(static_cast<size_t>(channels), 0.0);
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t c = 0; c < channels; ++c) sums[c] += partial[chunk * channels + c];
  return sums;
}

// Averages per-channel sums over each group's channels and positions, per channel.
std::vector<double> group_means(const std::vector<double>& sums, int64_t groups, int64_t rows) {
  const int64_t per_group = static_cast<int64_t>(sums.size()) / groups;
  std::vector<double> out(sums.size());
  for (int64_t g = 0; g < groups; ++g) {
    double s = 0.0;
    for (int64_t c = 0; c < per_group; ++c) s += sums[g * per_group + c];
    const double mean = s / static_cast<double>(per_group * rows);
    for (int64_t c = 0; c < per_group; ++c) out[g * per_group + c] = mean;
  }
  return out;
}

SplitMean split(const std::vector<double>& mean) {
  SplitMean m{std::vector<float>(mean.size()), std::vector<float>(mean.size())};
  for (size_t c = 0; c < mean.size(); ++c) {
    m.hi[c] = static_cast<float>(mean[c]);
    m.lo[c] = static_cast<float>(mean[c] - m.hi[c]);
  }
  return m;
}

// y = ((x - hi) - lo) * scale + beta per channel, then the activation.
struct Affine {
  const float *hi, *lo, *scale, *beta;
  int64_t channels;
};

VVAE_KERNEL void normalize_rows_body(const float* x, float* y, int64_t rows, const Affine& a,
                                     Activation act) {
  const int64_t c = a.channels;
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * c;
    float* out = y + r * c;
    for (int64_t i = 0; i < c; ++i) out[i] = ((in[i] - a.hi[i]) - a.lo[i]) * a.scale[i] + a.beta[i];
    if (act == Activation::kSilu)
      for (int64_t i = 0; i < c; ++i) out[i] = silu_fast(out[i]);
    else if (act == Activation::kRelu)
      for (int64_t i = 0; i < c; ++i) out[i] = std::max(out[i], 0.0f);
  }
}
VVAE_MULTI_ISA(normalize_rows,
               (const float* x, float* y, int64_t rows, const Affine& a, Activation act),
               (x, y, rows, a, act))

}  // namespace

Tensor group_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, int64_t groups,
                  float eps, Activation act) {
  if (x.rank() < 2) fail("group_norm needs a tensor of rank >= 2, got ", to_string(x.shape()));
  const int64_t n = x.dim(0), channels = x.dim(-1);
  if (groups < 1 || channels % groups != 0)
    fail("group_norm: ", groups, " groups do not divide ", channels, " channels");
  if (gamma.numel() != channels || beta.numel() != channels)
    fail("group_norm: affine parameters do not match ", channels, " channels");
  Tensor y = Tensor::empty(x.shape());
  if (dry_run_active() || x.numel() == 0) return y;

  const int64_t rows = x.numel() / (n * channels);
  for (int64_t s = 0; s < n; ++s) {
    const float* xs = x.data() + s * rows * channels;
    float* ys = y.data() + s * rows * channels;
    // Pass 1 centres on the first position's values, pass 2 on the group means.
    SplitMean pilot{std::vector<float>(xs, xs + channels),
                    std::vector<float>(static_cast<size_t>(channels))};
    std::vector<double> sums = channel_sums(xs, rows, channels, pilot, false);
    for (int64_t c = 0; c < channels; ++c)
      sums[c] += double{pilot.hi[c]} * static_cast<double>(rows);
    const SplitMean mean = split(group_means(sums, groups, rows));
    const std::vector<double> var =
        group_means(channel_sums(xs, rows, channels, mean, true), groups, rows);
    std::vector<float> scale(static_cast<size_t>(channels));
    for (int64_t c = 0; c < channels; ++c)
      scale[c] = static_cast<float>(gamma.data()[c] / std::sqrt(var[c] + double{eps}));
    const Affine affine{mean.hi.data(), mean.lo.data(), scale.data(), beta.data(), channels};
    parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
      normalize_rows(xs + r0 * channels, ys + r0 * channels, r1 - r0, affine, act);
    });
  }
  return y;
}

}  // namespace vvae
