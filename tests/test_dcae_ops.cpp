// The Video DC-AE kernels against naive references written from upstream's definitions:
// RMSNorm over channels, the depthwise 3-D convolution (and its fused GLU gating), the pixel
// (un)shuffles with their channel orders and shortcuts, and ReLU linear attention.
#include <cmath>

#include "core/cpu.hpp"
#include "ops/conv.hpp"
#include "ops/depthwise.hpp"
#include "ops/elementwise.hpp"
#include "ops/linear_attention.hpp"
#include "ops/pixel_shuffle.hpp"
#include "ops/rms_norm.hpp"
#include "test_util.hpp"
#include "vvae/error.hpp"

namespace vvae::test {
namespace {

double silu_ref(double v) {
  return v / (1.0 + std::exp(-v));
}

float activate_ref(double v, Activation act) {
  if (act == Activation::kRelu) return static_cast<float>(std::max(v, 0.0));
  if (act == Activation::kSilu) return static_cast<float>(silu_ref(v));
  return static_cast<float>(v);
}

// --- RMSNorm -------------------------------------------------------------------------------

Tensor naive_rms_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps,
                      Activation act) {
  const int64_t c = x.dim(-1), rows = x.numel() / c;
  Tensor y = Tensor::empty(x.shape());
  for (int64_t r = 0; r < rows; ++r) {
    double sq = 0;
    for (int64_t i = 0; i < c; ++i) sq += double{x.data()[r * c + i]} * x.data()[r * c + i];
    const double denom = std::sqrt(sq / static_cast<double>(c) + eps);
    for (int64_t i = 0; i < c; ++i)
      y.data()[r * c + i] =
          activate_ref(x.data()[r * c + i] / denom * w.data()[i] + b.data()[i], act);
  }
  return y;
}

TEST(RmsNorm, MatchesDefinition) {
  for (const Shape& shape : {Shape{2, 3, 4, 5, 24}, Shape{1, 7, 1000}, Shape{3, 1}}) {
    const int64_t c = shape.back();
    const Tensor x = random_tensor(shape, 1, 3.0f), w = random_tensor({c}, 2),
                 b = random_tensor({c}, 3);
    for (Activation act : {Activation::kNone, Activation::kRelu}) {
      const Tensor ref = naive_rms_norm(x, w, b, 1e-5, act);
      Tensor y = x.clone();
      rms_norm_inplace(y, w, b, 1e-5f, act);
      EXPECT_TRUE(close(y, ref, 1e-6));
    }
  }
  // Tiny inputs: eps dominates.
  const Tensor x = random_tensor({1, 4, 8}, 4, 1e-4f), w = Tensor::full({8}, 1.0f),
               b = Tensor::zeros({8});
  Tensor y = x.clone();
  rms_norm_inplace(y, w, b, 1e-5f);
  EXPECT_TRUE(close(y, naive_rms_norm(x, w, b, 1e-5, Activation::kNone), 1e-6));
  EXPECT_THROW(rms_norm_inplace(y, random_tensor({7}, 1), b, 1e-5f), Error);
}

// --- depthwise convolution -----------------------------------------------------------------

// Direct from the definition: zero padding k/2 on T, H, W; then the optional GLU gating.
Tensor naive_depthwise(const Tensor& x, const Tensor& w, const Tensor& b, bool glu) {
  const int64_t N = x.dim(0), T = x.dim(1), H = x.dim(2), W = x.dim(3), C = x.dim(4);
  const int64_t k = w.dim(2), r = k / 2;
  Tensor y = Tensor::empty(x.shape());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t v = 0; v < W; ++v)
          for (int64_t c = 0; c < C; ++c) {
            double acc = b.numel() ? b.data()[c] : 0.0;
            for (int64_t a = 0; a < k; ++a)
              for (int64_t p = 0; p < k; ++p)
                for (int64_t q = 0; q < k; ++q) {
                  const int64_t tt = t + a - r, hh = h + p - r, ww = v + q - r;
                  if (tt < 0 || tt >= T || hh < 0 || hh >= H || ww < 0 || ww >= W) continue;
                  acc += double{x.data()[(((n * T + tt) * H + hh) * W + ww) * C + c]} *
                         w.data()[c * k * k * k + (a * k + p) * k + q];
                }
            y.data()[(((n * T + t) * H + h) * W + v) * C + c] = static_cast<float>(acc);
          }
  if (!glu) return y;
  Shape half_shape = x.shape();
  half_shape[4] = C / 2;
  Tensor g = Tensor::empty(half_shape);
  for (int64_t i = 0; i < g.numel(); ++i) {
    const int64_t pos = i / (C / 2), c = i % (C / 2);
    g.data()[i] =
        static_cast<float>(y.data()[pos * C + c] * silu_ref(y.data()[pos * C + C / 2 + c]));
  }
  return g;
}

struct DwCase {
  Shape x;
  int64_t k;
  bool bias;
};

// The register-blocked kernel of each instruction set and the portable loops against the
// definition.
class DepthwiseEveryIsa : public ::testing::TestWithParam<Isa> {};

TEST_P(DepthwiseEveryIsa, MatchesDefinition) {
  const Isa isa = GetParam();
  if (isa > cpu_isa())
    GTEST_SKIP() << isa_name(isa) << " is above this CPU's " << isa_name(cpu_isa());
  // Widths below, at and above the blocked interior (8 + 2r), channel counts that are not a
  // multiple of the SIMD lanes, frames shorter than the kernel.
  const std::vector<DwCase> cases = {{{1, 3, 4, 21, 16}, 5, false},
                                     {{2, 2, 5, 3, 20}, 5, true},
                                     {{1, 6, 3, 13, 37}, 3, true},
                                     {{1, 1, 2, 2, 8}, 5, true},
                                     {{1, 4, 4, 32, 64}, 3, false},
                                     {{1, 5, 6, 9, 48}, 5, true},
                                     // Groups of four vector blocks, the last partly or wholly
                                     // short of channels.
                                     {{1, 3, 3, 10, 96}, 5, false},
                                     {{1, 2, 4, 5, 80}, 3, true},
                                     {{2, 2, 3, 4, 200}, 3, true}};
  uint64_t seed = 10;
  for (const DwCase& c : cases) {
    const int64_t ch = c.x.back();
    const Tensor x = random_tensor(c.x, seed++), w = random_tensor({ch, 1, c.k, c.k, c.k}, seed++);
    const Tensor b = c.bias ? random_tensor({ch}, seed++) : Tensor();
    const DepthwiseConv3d conv(w, b);
    const Tensor ref = naive_depthwise(x, w, b, false);
    EXPECT_TRUE(close(conv.run_at(x, isa), ref, 1e-5)) << to_string(c.x) << " k" << c.k;
    EXPECT_TRUE(close(conv.run_portable(x), ref, 1e-5)) << to_string(c.x) << " k" << c.k;
    if (ch % 2 == 0) {
      const Tensor gref = naive_depthwise(x, w, b, true);
      EXPECT_TRUE(close(conv.run_at(x, isa, DepthwiseOutput::kGluSilu), gref, 1e-5))
          << to_string(c.x);
      EXPECT_TRUE(close(conv.run_portable(x, DepthwiseOutput::kGluSilu), gref, 1e-5));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, DepthwiseEveryIsa,
                         ::testing::Values(Isa::kSse41, Isa::kAvx2, Isa::kAvx512),
                         [](const auto& param) { return std::string(isa_name(param.param)); });

TEST(Depthwise, AgreesWithOneDnnGroupedConv) {
  const Tensor x = random_tensor({1, 4, 6, 10, 32}, 1), w = random_tensor({32, 1, 5, 5, 5}, 2),
               b = random_tensor({32}, 3);
  ConvGeometry g = ConvGeometry::uniform(3, 1, 2);
  g.groups = 32;
  EXPECT_TRUE(close(DepthwiseConv3d(w, b)(x), Conv(w, b, g)(x), 1e-5));
}

TEST(Depthwise, GatingOfLargeValuesStaysFinite) {
  // exp overflows for gates below -88: silu tends to -0, as with std::exp.
  const Tensor x = random_tensor({1, 2, 3, 12, 32}, 5, 200.0f),
               w = random_tensor({32, 1, 3, 3, 3}, 6);
  const DepthwiseConv3d conv(w, Tensor());
  EXPECT_TRUE(
      close(conv(x, DepthwiseOutput::kGluSilu), naive_depthwise(x, w, Tensor(), true), 1e-5));
}

TEST(Depthwise, RefusesWhatItDoesNotImplement) {
  EXPECT_THROW(DepthwiseConv3d(random_tensor({4, 1, 7, 7, 7}, 1), Tensor()), Error);  // k7
  EXPECT_THROW(DepthwiseConv3d(random_tensor({4, 2, 3, 3, 3}, 1), Tensor()), Error);  // grouped
  const DepthwiseConv3d conv(random_tensor({5, 1, 3, 3, 3}, 1), Tensor());
  EXPECT_THROW(conv(random_tensor({1, 2, 2, 2, 4}, 1)), Error);  // channels
  EXPECT_THROW(conv(random_tensor({1, 2, 2, 2, 5}, 1), DepthwiseOutput::kGluSilu), Error);  // odd
}

// --- pixel (un)shuffle ---------------------------------------------------------------------

// Upstream's pixel_unshuffle_3d / per-frame F.pixel_unshuffle written index by index in
// channels-first terms: x (C, T, H, W) -> y (C * R, T/ft, H/fh, W/fw).
float unshuffled(const Tensor& x, const Factors3& f, int64_t j, int64_t t, int64_t h, int64_t w) {
  const int64_t H = x.dim(2), W = x.dim(3), C = x.dim(4);
  const int64_t R = f[0] * f[1] * f[2], c = j / R, r = j % R;
  const int64_t it = r / (f[1] * f[2]), ih = (r / f[2]) % f[1], iw = r % f[2];
  return x.data()[(((t * f[0] + it) * H + h * f[1] + ih) * W + w * f[2] + iw) * C + c];
}

TEST(PixelShuffle, UnshuffleChannelOrderAndAveraging) {
  for (const Factors3& f : {Factors3{2, 2, 2}, Factors3{1, 2, 2}, Factors3{1, 1, 1}}) {
    const Tensor x = random_tensor({1, 4, 6, 8, 6}, 3);
    const int64_t R = f[0] * f[1] * f[2];
    const Tensor u = pixel_unshuffle(x, f);
    ASSERT_EQ(u.shape(), (Shape{1, 4 / f[0], 6 / f[1], 8 / f[2], 6 * R}));
    for (int64_t t = 0; t < u.dim(1); ++t)
      for (int64_t h = 0; h < u.dim(2); ++h)
        for (int64_t w = 0; w < u.dim(3); ++w)
          for (int64_t j = 0; j < u.dim(4); ++j)
            ASSERT_EQ(u.data()[((t * u.dim(2) + h) * u.dim(3) + w) * u.dim(4) + j],
                      unshuffled(x, f, j, t, h, w));
    EXPECT_EQ(max_abs_diff(pixel_shuffle(u, f), x), 0.0);
    // Averaging runs of consecutive channels (view(B, out, group, ...).mean(2)).
    for (int64_t out : {int64_t{3}, 6 * R / 4}) {
      if ((6 * R) % out != 0) continue;
      const int64_t g = 6 * R / out;
      const Tensor a = pixel_unshuffle_average(x, f, out);
      for (int64_t pos = 0; pos < a.numel() / out; ++pos)
        for (int64_t o = 0; o < out; ++o) {
          double s = 0;
          for (int64_t k = 0; k < g; ++k) s += u.data()[pos * 6 * R + o * g + k];
          ASSERT_NEAR(a.data()[pos * out + o], s / static_cast<double>(g), 1e-6);
        }
    }
  }
  EXPECT_THROW(pixel_unshuffle(random_tensor({1, 3, 4, 4, 2}, 1), {2, 2, 2}), Error);  // odd T
  EXPECT_THROW(pixel_unshuffle_average(random_tensor({1, 2, 4, 4, 3}, 1), {2, 2, 2}, 5), Error);
}

TEST(PixelShuffle, ChannelDuplicatingShuffle) {
  for (const Factors3& f : {Factors3{2, 2, 2}, Factors3{1, 2, 2}, Factors3{1, 1, 1}}) {
    const int64_t R = f[0] * f[1] * f[2];
    const Tensor x = random_tensor({2, 2, 3, 4, 8}, 7);
    for (int64_t out : {int64_t{4}, int64_t{8}, int64_t{16}}) {
      if ((out * R) % 8 != 0) continue;
      const int64_t repeats = out * R / 8;
      // repeat_interleave on channels, then pixel_shuffle: the definition, step by step.
      Shape rep_shape = x.shape();
      rep_shape[4] = 8 * repeats;
      Tensor rep = Tensor::empty(rep_shape);
      for (int64_t pos = 0; pos < x.numel() / 8; ++pos)
        for (int64_t j = 0; j < 8 * repeats; ++j)
          rep.data()[pos * 8 * repeats + j] = x.data()[pos * 8 + j / repeats];
      EXPECT_EQ(max_abs_diff(duplicate_pixel_shuffle(x, f, out), pixel_shuffle(rep, f)), 0.0);
    }
  }
  EXPECT_THROW(duplicate_pixel_shuffle(random_tensor({1, 1, 2, 2, 3}, 1), {1, 2, 2}, 2), Error);
}

// --- ReLU linear attention -----------------------------------------------------------------

// Upstream's formula in double: per head, (v_pad @ relu(k)^T) @ relu(q), divided by the last row.
Tensor naive_linear_attention(const std::vector<Tensor>& parts, int64_t dim, double eps) {
  const int64_t n = parts[0].dim(0), l = parts[0].numel() / (n * parts[0].dim(-1));
  int64_t heads = 0;
  for (const auto& p : parts) heads += p.dim(-1) / (3 * dim);
  Shape shape = parts[0].shape();
  shape.back() = heads * dim;
  Tensor out = Tensor::empty(shape);
  for (int64_t s = 0; s < n; ++s) {
    int64_t h = 0;
    for (const auto& p : parts) {
      const int64_t c = p.dim(-1);
      for (int64_t ph = 0; ph < c / (3 * dim); ++ph, ++h) {
        auto at = [&](int64_t tok, int64_t j) {
          return double{p.data()[(s * l + tok) * c + ph * 3 * dim + j]};
        };
        std::vector<double> vk(static_cast<size_t>((dim + 1) * dim), 0.0);
        for (int64_t i = 0; i <= dim; ++i)
          for (int64_t j = 0; j < dim; ++j)
            for (int64_t tok = 0; tok < l; ++tok)
              vk[i * dim + j] +=
                  (i < dim ? at(tok, 2 * dim + i) : 1.0) * std::max(0.0, at(tok, dim + j));
        for (int64_t tok = 0; tok < l; ++tok) {
          std::vector<double> o(static_cast<size_t>(dim + 1), 0.0);
          for (int64_t i = 0; i <= dim; ++i)
            for (int64_t j = 0; j < dim; ++j) o[i] += vk[i * dim + j] * std::max(0.0, at(tok, j));
          for (int64_t i = 0; i < dim; ++i)
            out.data()[(s * l + tok) * heads * dim + h * dim + i] =
                static_cast<float>(o[i] / (o[dim] + eps));
        }
      }
    }
  }
  return out;
}

TEST(LinearAttention, MatchesUpstreamFormula) {
  // One part of two heads; two parts (qkv and its aggregation) over more tokens than a chunk.
  const std::vector<Tensor> one = {random_tensor({2, 3, 4, 5, 2 * 3 * 8}, 1)};
  EXPECT_TRUE(
      close(relu_linear_attention(one, 8, 1e-15f), naive_linear_attention(one, 8, 1e-15), 1e-5));
  const std::vector<Tensor> two = {random_tensor({1, 5, 20, 30, 96}, 2),
                                   random_tensor({1, 5, 20, 30, 96}, 3)};
  const Tensor y = relu_linear_attention(two, 32, 1e-15f);
  ASSERT_EQ(y.shape(), (Shape{1, 5, 20, 30, 64}));
  EXPECT_TRUE(close(y, naive_linear_attention(two, 32, 1e-15), 1e-5));
}

TEST(LinearAttention, TokensWithoutPositiveQueriesGiveZero) {
  // relu(q) == 0: numerator and normaliser are 0, and 0 / (0 + eps) is 0, as upstream.
  Tensor x = random_tensor({1, 10, 6}, 4);
  for (int64_t t = 0; t < 10; ++t)
    for (int64_t j = 0; j < 2; ++j) x.data()[t * 6 + j] = -std::abs(x.data()[t * 6 + j]);
  const Tensor y = relu_linear_attention({x}, 2, 1e-15f);
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y.data()[i], 0.0f);
}

TEST(LinearAttention, RefusesMismatchedParts) {
  EXPECT_THROW(relu_linear_attention({random_tensor({1, 4, 10}, 1)}, 4, 1e-15f), Error);
  EXPECT_THROW(relu_linear_attention({random_tensor({1, 4, 12}, 1), random_tensor({1, 5, 12}, 1)},
                                     4, 1e-15f),
               Error);
}

}  // namespace
}  // namespace vvae::test
