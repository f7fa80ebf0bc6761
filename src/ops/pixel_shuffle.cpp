#include "ops/pixel_shuffle.hpp"

#include <vector>

#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "core/threads.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

int64_t volume(const Factors3& f) {
  return f[0] * f[1] * f[2];
}

void check_video(const Tensor& x, const Factors3& f, const char* what) {
  if (x.rank() != 5) fail(what, " needs a (N, T, H, W, C) tensor, got ", to_string(x.shape()));
  for (int64_t v : f)
    if (v < 1) fail(what, ": factors must be >= 1");
}

}  // namespace

Tensor pixel_unshuffle_average(const Tensor& x, const Factors3& f, int64_t out_channels) {
  const ProfileTimer profile_timer("pixel_unshuffle_average", x.shape());
  check_video(x, f, "pixel_unshuffle");
  const int64_t N = x.dim(0), T = x.dim(1), H = x.dim(2), W = x.dim(3), C = x.dim(4);
  const int64_t R = volume(f);
  if (T % f[0] != 0 || H % f[1] != 0 || W % f[2] != 0)
    fail("pixel_unshuffle: ", to_string(x.shape()), " is not divisible by the factors (", f[0],
         ", ", f[1], ", ", f[2], ") in (T, H, W)");
  if (out_channels < 1 || (C * R) % out_channels != 0)
    fail("pixel_unshuffle: ", C * R, " unshuffled channels cannot be averaged to ", out_channels);
  const int64_t To = T / f[0], Ho = H / f[1], Wo = W / f[2], G = C * R / out_channels;
  Tensor y = Tensor::empty({N, To, Ho, Wo, out_channels});
  if (dry_run_active() || y.numel() == 0) return y;

  // Offset of unshuffled channel j from the first input voxel of its block.
  std::vector<int64_t> offset(static_cast<size_t>(C * R));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t it = 0; it < f[0]; ++it)
      for (int64_t ih = 0; ih < f[1]; ++ih)
        for (int64_t iw = 0; iw < f[2]; ++iw)
          offset[static_cast<size_t>(c * R + (it * f[1] + ih) * f[2] + iw)] =
              ((it * H + ih) * W + iw) * C + c;
  const float scale = static_cast<float>(G);
  parallel_for(N * To * Ho, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / (To * Ho), t = (r / Ho) % To, h = r % Ho;
      for (int64_t w = 0; w < Wo; ++w) {
        const float* base = x.data() + (((n * T + t * f[0]) * H + h * f[1]) * W + w * f[2]) * C;
        float* out = y.data() + ((r * Wo) + w) * out_channels;
        const int64_t* j = offset.data();
        for (int64_t o = 0; o < out_channels; ++o, j += G) {
          float s = 0.0f;
          for (int64_t g = 0; g < G; ++g) s += base[j[g]];
          out[o] = s / scale;
        }
      }
    }
  });
  return y;
}

Tensor pixel_unshuffle(const Tensor& x, const Factors3& f) {
  check_video(x, f, "pixel_unshuffle");
  return pixel_unshuffle_average(x, f, x.dim(4) * volume(f));
}

Tensor duplicate_pixel_shuffle(const Tensor& x, const Factors3& f, int64_t out_channels) {
  const ProfileTimer profile_timer("duplicate_pixel_shuffle", x.shape());
  check_video(x, f, "pixel_shuffle");
  const int64_t N = x.dim(0), T = x.dim(1), H = x.dim(2), W = x.dim(3), C = x.dim(4);
  const int64_t R = volume(f);
  if (out_channels < 1 || (out_channels * R) % C != 0)
    fail("pixel_shuffle: ", C, " channels cannot be repeated to ", out_channels * R);
  const int64_t repeats = out_channels * R / C;
  const int64_t Wo = W * f[2];
  Tensor y = Tensor::empty({N, T * f[0], H * f[1], Wo, out_channels});
  if (dry_run_active() || y.numel() == 0) return y;

  // Output channel o at block position r reads input channel (o * R + r) / repeats.
  std::vector<int64_t> source(static_cast<size_t>(R * out_channels));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t o = 0; o < out_channels; ++o)
      source[static_cast<size_t>(r * out_channels + o)] = (o * R + r) / repeats;
  parallel_for(N * T * H, 4, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t n = row / (T * H), t = (row / H) % T, h = row % H;
      for (int64_t w = 0; w < W; ++w) {
        const float* in = x.data() + (row * W + w) * C;
        for (int64_t it = 0; it < f[0]; ++it)
          for (int64_t ih = 0; ih < f[1]; ++ih)
            for (int64_t iw = 0; iw < f[2]; ++iw) {
              const int64_t r = (it * f[1] + ih) * f[2] + iw;
              const int64_t ot = t * f[0] + it, oh = h * f[1] + ih, ow = w * f[2] + iw;
              float* out =
                  y.data() + (((n * T * f[0] + ot) * H * f[1] + oh) * Wo + ow) * out_channels;
              const int64_t* src = source.data() + r * out_channels;
              for (int64_t o = 0; o < out_channels; ++o) out[o] = in[src[o]];
            }
      }
    }
  });
  return y;
}

Tensor pixel_shuffle(const Tensor& x, const Factors3& f) {
  check_video(x, f, "pixel_shuffle");
  const int64_t R = volume(f);
  if (x.dim(4) % R != 0) fail("pixel_shuffle: ", x.dim(4), " channels are not divisible by ", R);
  return duplicate_pixel_shuffle(x, f, x.dim(4) / R);
}

}  // namespace vvae
