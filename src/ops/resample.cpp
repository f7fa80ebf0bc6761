#include "ops/resample.hpp"

#include <algorithm>
#include <cstring>

#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "core/threads.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

// Index arithmetic shared by the kernels: a channels-last tensor seen as (N, S0, S1, S2, C)
// with missing spatial dims of size 1.
struct Dims5 {
  int64_t n = 1, s[3] = {1, 1, 1}, c = 1;

  static Dims5 of(const Shape& shape) {
    const int spatial = static_cast<int>(shape.size()) - 2;
    if (spatial < 1 || spatial > 3)
      fail("expected a channels-last tensor of rank 3..5, got ", to_string(shape));
    Dims5 d;
    d.n = shape.front();
    d.c = shape.back();
    for (int i = 0; i < spatial; ++i) d.s[3 - spatial + i] = shape[static_cast<size_t>(i + 1)];
    return d;
  }
  int64_t rows() const { return n * s[0] * s[1] * s[2]; }
};

std::vector<int64_t> padded3(const std::vector<int64_t>& v, int spatial, int64_t fill) {
  std::vector<int64_t> out(3, fill);
  for (int i = 0; i < spatial; ++i)
    out[static_cast<size_t>(3 - spatial + i)] = v[static_cast<size_t>(i)];
  return out;
}

}  // namespace

Tensor upsample_nearest(const Tensor& x, const std::vector<int64_t>& factors) {
  const ProfileTimer profile_timer("upsample_nearest", x.shape());
  const int spatial = x.rank() - 2;
  if (static_cast<int>(factors.size()) != spatial)
    fail("upsample_nearest: ", factors.size(), " factors for ", spatial, " spatial dims");
  Shape shape = x.shape();
  for (int i = 0; i < spatial; ++i) {
    if (factors[static_cast<size_t>(i)] < 1) fail("upsample_nearest: factors must be >= 1");
    shape[static_cast<size_t>(i + 1)] *= factors[static_cast<size_t>(i)];
  }
  Tensor y = Tensor::empty(shape);
  if (dry_run_active()) return y;

  const Dims5 in = Dims5::of(x.shape()), out = Dims5::of(shape);
  const std::vector<int64_t> f = padded3(factors, spatial, 1);
  const size_t row_bytes = static_cast<size_t>(in.c) * sizeof(float);
  // One task per output row (n, d, h): copy each input pixel f[2] times along W.
  parallel_for(out.n * out.s[0] * out.s[1], 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / (out.s[0] * out.s[1]);
      const int64_t od = (r / out.s[1]) % out.s[0], oh = r % out.s[1];
      const float* src =
          x.data() + ((n * in.s[0] + od / f[0]) * in.s[1] + oh / f[1]) * in.s[2] * in.c;
      float* dst = y.data() + r * out.s[2] * out.c;
      for (int64_t w = 0; w < in.s[2]; ++w)
        for (int64_t k = 0; k < f[2]; ++k)
          std::memcpy(dst + (w * f[2] + k) * in.c, src + w * in.c, row_bytes);
    }
  });
  return y;
}

Tensor pad(const Tensor& x, const std::vector<int64_t>& lo, const std::vector<int64_t>& hi,
           PadMode mode) {
  const ProfileTimer profile_timer("pad", x.shape());
  const int spatial = x.rank() - 2;
  if (static_cast<int>(lo.size()) != spatial || static_cast<int>(hi.size()) != spatial)
    fail("pad: padding must list ", spatial, " spatial dims");
  Shape shape = x.shape();
  for (int i = 0; i < spatial; ++i) {
    const size_t d = static_cast<size_t>(i);
    if (lo[d] < 0 || hi[d] < 0) fail("pad: negative padding");
    if (mode == PadMode::kReplicate && shape[d + 1] == 0 && lo[d] + hi[d] > 0)
      fail("pad: cannot replicate an empty dimension");
    shape[d + 1] += lo[d] + hi[d];
  }
  Tensor y = Tensor::empty(shape);
  if (dry_run_active()) return y;

  const Dims5 in = Dims5::of(x.shape()), out = Dims5::of(shape);
  const std::vector<int64_t> l = padded3(lo, spatial, 0);
  const size_t pixel_bytes = static_cast<size_t>(in.c) * sizeof(float);
  // Maps an output coordinate to its source coordinate, or -1 for a zero.
  auto source = [&](int64_t o, int axis) -> int64_t {
    const int64_t i = o - l[static_cast<size_t>(axis)];
    if (i >= 0 && i < in.s[axis]) return i;
    if (mode == PadMode::kZeros) return -1;
    return std::clamp<int64_t>(i, 0, in.s[axis] - 1);
  };
  parallel_for(out.n * out.s[0] * out.s[1], 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / (out.s[0] * out.s[1]);
      const int64_t id = source((r / out.s[1]) % out.s[0], 0), ih = source(r % out.s[1], 1);
      float* dst = y.data() + r * out.s[2] * out.c;
      for (int64_t ow = 0; ow < out.s[2]; ++ow) {
        const int64_t iw = source(ow, 2);
        if (id < 0 || ih < 0 || iw < 0) {
          std::memset(dst + ow * out.c, 0, pixel_bytes);
        } else {
          const float* src = x.data() + (((n * in.s[0] + id) * in.s[1] + ih) * in.s[2] + iw) * in.c;
          std::memcpy(dst + ow * out.c, src, pixel_bytes);
        }
      }
    }
  });
  return y;
}

}  // namespace vvae
