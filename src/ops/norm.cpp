#include "ops/norm.hpp"

#include <cmath>
#include <vector>

#include "core/dry_run.hpp"
#include "core/profile.hpp"
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

// Per-channel sums over one chunk of rows of d = x - pilot and of d * d, in float: the pilot (the
// first position's values) sits within the data's spread, so neither sum cancels.
VVAE_KERNEL void chunk_sums_body(const float* x, int64_t rows, int64_t channels, const float* pilot,
                                 float* sum, float* square) {
  for (int64_t c = 0; c < channels; ++c) sum[c] = square[c] = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      const float d = row[c] - pilot[c];
      sum[c] += d;
      square[c] += d * d;
    }
  }
}
VVAE_MULTI_ISA(chunk_sums,
               (const float* x, int64_t rows, int64_t channels, const float* pilot, float* sum,
                float* square),
               (x, rows, channels, pilot, sum, square))

struct GroupStats {
  std::vector<double> mean, var;  // per channel: its group's mean and (biased) variance
};

// Group means and variances in one pass over the data: per channel the sums of d = x - pilot and
// d^2 (float within fixed chunks, so results do not depend on the thread count; double across
// them), then per group sum over (x - m)^2 = d^2 + 2 (p - m) d + (p - m)^2 per position.
GroupStats group_stats(const float* x, int64_t rows, int64_t channels, int64_t groups) {
  const float* pilot = x;
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  std::vector<float> partial(static_cast<size_t>(2 * chunks * channels));
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      const int64_t r0 = chunk * kRowsPerChunk, r1 = std::min(rows, r0 + kRowsPerChunk);
      float* out = partial.data() + 2 * chunk * channels;
      chunk_sums(x + r0 * channels, r1 - r0, channels, pilot, out, out + channels);
    }
  });
  std::vector<double> sum(static_cast<size_t>(channels), 0.0), square(sum);
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    for (int64_t c = 0; c < channels; ++c) {
      sum[c] += partial[(2 * chunk) * channels + c];
      square[c] += partial[(2 * chunk + 1) * channels + c];
    }
  const int64_t per_group = channels / groups;
  const double count = static_cast<double>(per_group * rows);
  GroupStats st{std::vector<double>(static_cast<size_t>(channels)),
                std::vector<double>(static_cast<size_t>(channels))};
  for (int64_t g = 0; g < groups; ++g) {
    double total = 0.0;
    for (int64_t c = g * per_group; c < (g + 1) * per_group; ++c)
      total += double{pilot[c]} * static_cast<double>(rows) + sum[c];
    const double mean = total / count;
    double dev = 0.0;
    for (int64_t c = g * per_group; c < (g + 1) * per_group; ++c) {
      const double off = double{pilot[c]} - mean;
      dev += square[c] + 2.0 * off * sum[c] + off * off * static_cast<double>(rows);
    }
    for (int64_t c = g * per_group; c < (g + 1) * per_group; ++c) {
      st.mean[c] = mean;
      st.var[c] = std::max(0.0, dev / count);
    }
  }
  return st;
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

template <int kLanes>
VVAE_KERNEL void normalize_rows_body(const float* x, float* y, int64_t rows, const Affine& a,
                                     Activation act) {
  const int64_t c = a.channels;
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = x + r * c;
    float* out = y + r * c;
    for (int64_t i = 0; i < c; ++i) out[i] = ((in[i] - a.hi[i]) - a.lo[i]) * a.scale[i] + a.beta[i];
    if (act == Activation::kSilu)
      silu_span<kLanes>(out, out, c);
    else if (act == Activation::kRelu)
      for (int64_t i = 0; i < c; ++i) out[i] = std::max(out[i], 0.0f);
  }
}
VVAE_MULTI_ISA_LANES(normalize_rows,
                     (const float* x, float* y, int64_t rows, const Affine& a, Activation act),
                     (x, y, rows, a, act))

}  // namespace

Tensor group_norm(Tensor x, const Tensor& gamma, const Tensor& beta, int64_t groups, float eps,
                  Activation act) {
  const ProfileTimer profile_timer("group_norm", x.shape());
  if (x.rank() < 2) fail("group_norm needs a tensor of rank >= 2, got ", to_string(x.shape()));
  const int64_t n = x.dim(0), channels = x.dim(-1);
  if (groups < 1 || channels % groups != 0)
    fail("group_norm: ", groups, " groups do not divide ", channels, " channels");
  if (gamma.numel() != channels || beta.numel() != channels)
    fail("group_norm: affine parameters do not match ", channels, " channels");
  // In place, each row is read whole before it is written.
  Tensor y = x.storage_unique() ? x : Tensor::empty(x.shape());
  if (dry_run_active() || x.numel() == 0) return y;

  const int64_t rows = x.numel() / (n * channels);
  for (int64_t s = 0; s < n; ++s) {
    const float* xs = x.data() + s * rows * channels;
    float* ys = y.data() + s * rows * channels;
    const GroupStats st = group_stats(xs, rows, channels, groups);
    const SplitMean mean = split(st.mean);
    const std::vector<double>& var = st.var;
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
