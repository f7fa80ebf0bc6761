#include "ops/layout.hpp"

#include <algorithm>

#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "core/threads.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

// out[b][j][i] = in[b][i][j] for a batch of rows x cols matrices, in cache-sized blocks.
void transpose_batched(const float* in, float* out, int64_t batch, int64_t rows, int64_t cols) {
  constexpr int64_t kBlock = 32;
  const int64_t row_blocks = (rows + kBlock - 1) / kBlock;
  const int64_t col_blocks = (cols + kBlock - 1) / kBlock;
  parallel_for(batch * row_blocks * col_blocks, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / (row_blocks * col_blocks);
      const int64_t rb = (t / col_blocks) % row_blocks, cb = t % col_blocks;
      const float* src = in + b * rows * cols;
      float* dst = out + b * rows * cols;
      const int64_t r1 = std::min(rows, (rb + 1) * kBlock), c1 = std::min(cols, (cb + 1) * kBlock);
      for (int64_t r = rb * kBlock; r < r1; ++r)
        for (int64_t c = cb * kBlock; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
    }
  });
}

void check_rank(const Tensor& x, const char* what) {
  if (x.rank() < 3) fail(what, " needs a tensor of rank >= 3, got ", to_string(x.shape()));
}

}  // namespace

Tensor to_channels_last(const Tensor& x) {
  const ProfileTimer profile_timer("to_channels_last", x.shape());
  check_rank(x, "to_channels_last");
  Shape shape(x.shape().begin() + 2, x.shape().end());
  shape.insert(shape.begin(), x.dim(0));
  shape.push_back(x.dim(1));
  Tensor y = Tensor::empty(shape);
  if (!dry_run_active()) {
    const int64_t c = x.dim(1), s = x.numel() / std::max<int64_t>(1, x.dim(0) * c);
    transpose_batched(x.data(), y.data(), x.dim(0), c, s);
  }
  return y;
}

Tensor to_channels_first(const Tensor& x) {
  const ProfileTimer profile_timer("to_channels_first", x.shape());
  check_rank(x, "to_channels_first");
  Shape shape = {x.dim(0), x.dim(-1)};
  shape.insert(shape.end(), x.shape().begin() + 1, x.shape().end() - 1);
  Tensor y = Tensor::empty(shape);
  if (!dry_run_active()) {
    const int64_t c = x.dim(-1), s = x.numel() / std::max<int64_t>(1, x.dim(0) * c);
    transpose_batched(x.data(), y.data(), x.dim(0), s, c);
  }
  return y;
}

Tensor crop_to_channels_last(const Tensor& x, int64_t b, const Box& box) {
  const ProfileTimer profile_timer("crop_to_channels_last", x.shape());
  if (x.rank() != 5) fail("expected a (B, C, T, H, W) tensor, got ", to_string(x.shape()));
  const int64_t C = x.dim(1), T = x.dim(2), H = x.dim(3), W = x.dim(4);
  if (b < 0 || b >= x.dim(0) || box.t0 < 0 || box.t1 > T || box.h0 < 0 || box.h1 > H ||
      box.w0 < 0 || box.w1 > W || box.frames() < 0 || box.height() < 0 || box.width() < 0)
    fail("crop outside the tensor ", to_string(x.shape()));
  Tensor y = Tensor::empty({1, box.frames(), box.height(), box.width(), C});
  if (dry_run_active()) return y;
  const float* src = x.data() + b * C * T * H * W;
  float* dst = y.data();
  const int64_t rows = box.frames() * box.height();
  parallel_for(rows, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = box.t0 + r / box.height(), h = box.h0 + r % box.height();
      float* out = dst + r * box.width() * C;
      for (int64_t c = 0; c < C; ++c) {
        const float* in = src + ((c * T + t) * H + h) * W + box.w0;
        for (int64_t w = 0; w < box.width(); ++w) out[w * C + c] = in[w];
      }
    }
  });
  return y;
}

void paste_channels_first(const Tensor& src, Tensor& dst, int64_t b, int64_t t0, int64_t h0,
                          int64_t w0) {
  if (src.rank() != 5 || src.dim(0) != 1 || dst.rank() != 5 || src.dim(4) != dst.dim(1))
    fail("cannot paste ", to_string(src.shape()), " into ", to_string(dst.shape()));
  const int64_t C = dst.dim(1), T = dst.dim(2), H = dst.dim(3), W = dst.dim(4);
  const int64_t t = src.dim(1), h = src.dim(2), w = src.dim(3);
  if (b < 0 || b >= dst.dim(0) || t0 < 0 || h0 < 0 || w0 < 0 || t0 + t > T || h0 + h > H ||
      w0 + w > W)
    fail("paste of ", to_string(src.shape()), " falls outside ", to_string(dst.shape()));
  if (dry_run_active()) return;
  float* out = dst.data() + b * C * T * H * W;
  const float* in = src.data();
  parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t tt = 0; tt < t; ++tt)
        for (int64_t hh = 0; hh < h; ++hh) {
          float* row = out + ((c * T + t0 + tt) * H + h0 + hh) * W + w0;
          const float* src_row = in + (tt * h + hh) * w * C + c;
          for (int64_t ww = 0; ww < w; ++ww) row[ww] = src_row[ww * C];
        }
  });
}

}  // namespace vvae
