// Each kernel against a naive reference written from its definition.
#include <cmath>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "core/profile.hpp"
#include "core/random.hpp"
#include "ops/attention.hpp"
#include "ops/conv.hpp"
#include "ops/elementwise.hpp"
#include "ops/layout.hpp"
#include "ops/norm.hpp"
#include "ops/resample.hpp"
#include "ops/upsample_conv.hpp"
#include "ops/vector_math.hpp"
#include "test_util.hpp"
#include "vvae/error.hpp"

namespace vvae::test {
namespace {

// Channels-last (N, D, H, W, C) accessor over a rank-4 or rank-5 tensor (D = 1 for rank 4).
struct View5 {
  const Tensor& t;
  int64_t d, h, w, c;
  explicit View5(const Tensor& x)
      : t(x), d(x.rank() == 5 ? x.dim(1) : 1), h(x.dim(-3)), w(x.dim(-2)), c(x.dim(-1)) {}
  float at(int64_t n, int64_t z, int64_t y, int64_t x, int64_t ch) const {
    return t.data()[(((n * d + z) * h + y) * w + x) * c + ch];
  }
};

// Direct convolution from the definition, zero padding, channels-last.
Tensor naive_conv(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g,
                  const Shape& out_shape) {
  const int s = g.spatial_dims;
  const View5 in(x);
  Tensor y = Tensor::zeros(out_shape);
  const View5 out(y);
  const int64_t O = w.dim(0), Ig = w.dim(1), Og = O / g.groups;
  const int64_t kd = s == 3 ? w.dim(2) : 1, kh = w.dim(-2), kw = w.dim(-1);
  const int64_t sd = s == 3 ? g.stride[0] : 1, sh = g.stride[s - 2], sw = g.stride[s - 1];
  const int64_t pd = s == 3 ? g.pad_lo[0] : 0, ph = g.pad_lo[s - 2], pw = g.pad_lo[s - 1];
  for (int64_t n = 0; n < x.dim(0); ++n)
    for (int64_t oz = 0; oz < out.d; ++oz)
      for (int64_t oy = 0; oy < out.h; ++oy)
        for (int64_t ox = 0; ox < out.w; ++ox)
          for (int64_t o = 0; o < O; ++o) {
            double acc = b.numel() ? b.data()[o] : 0.0;
            const int64_t group = o / Og;
            for (int64_t i = 0; i < Ig; ++i)
              for (int64_t a = 0; a < kd; ++a)
                for (int64_t p = 0; p < kh; ++p)
                  for (int64_t q = 0; q < kw; ++q) {
                    const int64_t iz = oz * sd - pd + a, iy = oy * sh - ph + p,
                                  ix = ox * sw - pw + q;
                    if (iz < 0 || iz >= in.d || iy < 0 || iy >= in.h || ix < 0 || ix >= in.w)
                      continue;
                    acc += double{in.at(n, iz, iy, ix, group * Ig + i)} *
                           w.data()[(((o * Ig + i) * kd + a) * kh + p) * kw + q];
                  }
            y.data()[(((n * out.d + oz) * out.h + oy) * out.w + ox) * O + o] =
                static_cast<float>(acc);
          }
  return y;
}

struct ConvCase {
  int dims;
  Shape x;
  int64_t out;
  std::vector<int64_t> kernel;
  ConvGeometry geometry;
};

void check_conv(const ConvCase& c, uint64_t seed) {
  const int64_t in = c.x.back();
  Shape wshape = {c.out, in / c.geometry.groups};
  wshape.insert(wshape.end(), c.kernel.begin(), c.kernel.end());
  const Tensor x = random_tensor(c.x, seed), w = random_tensor(wshape, seed + 1),
               b = random_tensor({c.out}, seed + 2);
  const Conv conv(w, b, c.geometry);
  const Tensor y = conv(x);
  EXPECT_TRUE(close(y, naive_conv(x, w, b, c.geometry, y.shape()), 1e-5));
  // accumulate: dst + conv(x)
  Tensor dst = random_tensor(y.shape(), seed + 3);
  Tensor expected = naive_conv(x, w, b, c.geometry, y.shape());
  add_inplace(expected, dst);
  conv.accumulate(x, dst);
  EXPECT_TRUE(close(dst, expected, 1e-5));
}

TEST(Conv, TwoDimensional) {
  check_conv({2, {2, 9, 7, 5}, 6, {3, 3}, ConvGeometry::uniform(2, 1, 1)}, 10);
  check_conv({2, {1, 8, 6, 4}, 3, {1, 1}, ConvGeometry::uniform(2, 1, 0)}, 20);
  ConvGeometry grouped = ConvGeometry::uniform(2, 1, 1);
  grouped.groups = 2;
  check_conv({2, {1, 5, 5, 4}, 6, {3, 3}, grouped}, 30);
}

TEST(Conv, AsymmetricZeroPadStrideTwo) {
  // The ae2d Downsample: F.pad(x, (0, 1, 0, 1)) then a 3x3 stride-2 conv without padding.
  ConvGeometry g = ConvGeometry::uniform(2, 2, 0);
  g.pad_hi = {1, 1, 0};
  check_conv({2, {1, 8, 10, 4}, 4, {3, 3}, g}, 40);
  const Conv conv(random_tensor({4, 4, 3, 3}, 1), Tensor(), g);
  EXPECT_EQ(conv.output_shape({1, 8, 10, 4}), (Shape{1, 4, 5, 4}));
}

TEST(Conv, ThreeDimensional) {
  check_conv({3, {1, 5, 6, 4, 3}, 5, {3, 3, 3}, ConvGeometry::uniform(3, 1, 1)}, 50);
  check_conv({3, {2, 5, 6, 6, 4}, 4, {3, 3, 3}, ConvGeometry::uniform(3, 2, 0)}, 60);
  ConvGeometry depthwise = ConvGeometry::uniform(3, 1, 2);
  depthwise.groups = 4;
  check_conv({3, {1, 6, 5, 7, 4}, 4, {5, 5, 5}, depthwise}, 70);
}

// The convolutions vvae runs as tap-wise products (16 and more channels, not 3x3 stride 1): the
// downsampling and 1x1 layers of the three families, rows longer than one 64-pixel segment.
TEST(Conv, TapWiseProductsMatchTheDefinition) {
  ConvGeometry ae2d_down = ConvGeometry::uniform(2, 2, 0);
  ae2d_down.pad_hi = {1, 1, 0};
  check_conv({2, {2, 9, 11, 16}, 20, {3, 3}, ae2d_down}, 80);
  check_conv({2, {1, 4, 150, 24}, 40, {1, 1}, ConvGeometry::uniform(2, 1, 0)}, 81);
  check_conv({3, {1, 5, 6, 7, 16}, 33, {3, 3, 3}, ConvGeometry::uniform(3, 2, 1)}, 82);
  check_conv({3, {1, 7, 9, 9, 16}, 16, {3, 3, 3}, ConvGeometry::uniform(3, 2, 0)}, 83);
  ConvGeometry spatial_only = ConvGeometry::uniform(3, 2, 0);
  spatial_only.stride = {1, 2, 2};
  check_conv({3, {1, 4, 9, 133, 16}, 16, {3, 3, 3}, spatial_only}, 84);
  check_conv({3, {2, 3, 5, 4, 48}, 17, {1, 1, 1}, ConvGeometry::uniform(3, 1, 0)}, 85);
  // Stride 1 with a kernel Winograd does not take.
  check_conv({2, {1, 9, 8, 16}, 16, {5, 5}, ConvGeometry::uniform(2, 1, 2)}, 86);
  // The DC-AE's downsampling (spatial stride 2, padded): at 256 input channels 27 taps' panels
  // outgrow the L2 budget, so each product is cut into calls that add onto the output, and the
  // padded edge columns join the products of the columns whose taps match theirs.
  ConvGeometry dcae_down = ConvGeometry::uniform(3, 2, 1);
  dcae_down.stride = {1, 2, 2};
  check_conv({3, {1, 3, 6, 7, 256}, 40, {3, 3, 3}, dcae_down}, 89);
  // And it is vvae's kernel that ran, not oneDNN's.
  const Conv conv(random_tensor({16, 16, 3, 3}, 87), Tensor(), ae2d_down);
  set_profiling(true);
  conv(random_tensor({1, 8, 8, 16}, 88));
  set_profiling(false);
  const auto profile = take_profile();
  ASSERT_EQ(profile.size(), 1u);
  EXPECT_EQ(profile[0].op, "conv gemm 3x3 s2");
}

// A checkpoint's bias sits at any 8-byte offset of its mapped file: oneDNN's SSE4.1 kernels read
// it with aligned loads (a crash under VVAE_MAX_ISA=sse41 before Conv copied it).
TEST(Conv, BiasAtAnUnalignedAddress) {
  auto storage = std::make_shared<std::vector<float>>(64 + 2);
  const Tensor b = random_tensor({32}, 90);
  std::copy_n(b.data(), 32, storage->data() + 2);
  const Tensor unaligned = Tensor::borrow({32}, storage->data() + 2, storage);
  ASSERT_NE(reinterpret_cast<uintptr_t>(unaligned.data()) % 16, 0u);
  const ComputeScope direct({Precision::kFp32, ConvAlgorithm::kDirect});
  const Tensor x = random_tensor({1, 6, 7, 32}, 91), w = random_tensor({32, 32, 3, 3}, 92, 0.2f);
  const ConvGeometry g = ConvGeometry::uniform(2, 1, 1);
  const Conv conv(w, unaligned, g);
  Tensor y = conv(x);
  EXPECT_TRUE(close(y, naive_conv(x, w, b, g, y.shape()), 1e-5));
  conv.accumulate(x, y);  // the fused residual add reads the bias too
  Tensor twice = naive_conv(x, w, b, g, y.shape());
  add_inplace(twice, naive_conv(x, w, b, g, y.shape()));
  EXPECT_TRUE(close(y, twice, 1e-5));
}

// A oneDNN primitive made on one thread runs on others, at once, each with its own scratchpad
// (oneDNN's own one belongs to the thread that made the primitive: a crash under
// VVAE_MAX_ISA=sse41 when a model made on one thread encoded on another).
TEST(Conv, OneDnnPrimitiveRunsOnOtherThreadsAtOnce) {
  const ComputeOptions direct{Precision::kFp32, ConvAlgorithm::kDirect};
  const ComputeScope scope(direct);
  const Tensor x = random_tensor({1, 5, 20, 18, 8}, 93),
               w = random_tensor({16, 8, 3, 3, 3}, 94, 0.2f);
  const Conv conv(w, random_tensor({16}, 95), ConvGeometry::uniform(3, 1, 1));
  const Tensor made_here = conv(x);
  std::vector<Tensor> results(8);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      const ComputeScope mode(direct);
      for (size_t i = t; i < results.size(); i += 2) results[i] = conv(x);
    });
  for (std::thread& t : threads) t.join();
  for (const Tensor& y : results) EXPECT_TRUE(close(y, made_here, 0.0));
}

// A convolution in a faster mode against fp32: close, and (for bf16) measurably not identical,
// with and without the fused residual add.
void check_mode(const ComputeOptions& mode, double max_error, double min_error) {
  VVAE_SKIP_UNLESS_CPU_RUNS(mode);
  const Tensor x = random_tensor({1, 20, 18, 64}, 1), w = random_tensor({48, 64, 3, 3}, 2, 0.1f),
               b = random_tensor({48}, 3);
  const Conv conv(w, b, ConvGeometry::uniform(2, 1, 1));
  const Tensor ref = conv(x);
  Tensor ref_acc = random_tensor(ref.shape(), 4);
  Tensor acc = ref_acc.clone();
  conv.accumulate(x, ref_acc);
  const ComputeScope scope(mode);
  const Tensor y = conv(x);
  conv.accumulate(x, acc);
  for (const double err : {relative_error(y, ref), relative_error(acc, ref_acc)}) {
    EXPECT_LT(err, max_error);
    EXPECT_GE(err, min_error);
  }
}

TEST(Conv, Bf16Mode) {
  check_mode({Precision::kBf16, ConvAlgorithm::kDirect}, 3e-2, 1e-5);
}

TEST(Conv, WinogradMode) {
  check_mode({Precision::kFp32, ConvAlgorithm::kWinograd}, 1e-4, 0.0);
}

TEST(Conv, RejectsMismatchedInput) {
  const Conv conv(random_tensor({4, 3, 3, 3}, 1), Tensor(), ConvGeometry::uniform(2, 1, 1));
  EXPECT_THROW(conv(random_tensor({1, 5, 5, 2}, 2)), Error);     // channels
  EXPECT_THROW(conv(random_tensor({1, 5, 5, 5, 3}, 2)), Error);  // rank
}

float reference_activation(double v, Activation act) {
  if (act == Activation::kSilu) return static_cast<float>(v / (1.0 + std::exp(-v)));
  if (act == Activation::kRelu) return static_cast<float>(v > 0 ? v : 0.0);
  return static_cast<float>(v);
}

Tensor naive_group_norm(const Tensor& x, const Tensor& g, const Tensor& b, int64_t groups,
                        float eps, Activation act) {
  const int64_t n = x.dim(0), c = x.dim(-1), rows = x.numel() / (n * c), cg = c / groups;
  Tensor y = Tensor::empty(x.shape());
  for (int64_t s = 0; s < n; ++s)
    for (int64_t gr = 0; gr < groups; ++gr) {
      double sum = 0, sq = 0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < cg; ++k) sum += x.data()[(s * rows + r) * c + gr * cg + k];
      const double mean = sum / static_cast<double>(rows * cg);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < cg; ++k) {
          const double d = x.data()[(s * rows + r) * c + gr * cg + k] - mean;
          sq += d * d;
        }
      const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(rows * cg) + eps);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < cg; ++k) {
          const int64_t i = (s * rows + r) * c + gr * cg + k, ch = gr * cg + k;
          const double v = (x.data()[i] - mean) * rstd * g.data()[ch] + b.data()[ch];
          y.data()[i] = reference_activation(v, act);
        }
    }
  return y;
}

TEST(GroupNorm, MatchesDefinitionIn2DAnd5D) {
  for (const Shape& shape : {Shape{2, 7, 9, 64}, Shape{1, 3, 5, 6, 8}, Shape{2, 300, 1, 32}}) {
    const int64_t c = shape.back(), groups = c >= 32 ? 32 : 4;
    Tensor x = random_tensor(shape, 5, 3.0f);
    for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] += 2.0f;  // non-zero mean
    const Tensor g = random_tensor({c}, 6), b = random_tensor({c}, 7);
    for (Activation act : {Activation::kNone, Activation::kSilu})
      EXPECT_TRUE(close(group_norm(x, g, b, groups, 1e-6f, act),
                        naive_group_norm(x, g, b, groups, 1e-6f, act), 1e-5));
  }
  EXPECT_THROW(group_norm(random_tensor({1, 4, 6}, 1), random_tensor({6}, 1), random_tensor({6}, 1),
                          4, 1e-6f),
               Error);
}

TEST(GroupNorm, WritesInPlaceOnlyOverStorageOfItsOwn) {
  const Tensor x = random_tensor({2, 9, 11, 64}, 10, 2.0f);
  const Tensor g = random_tensor({64}, 11), b = random_tensor({64}, 12);
  const Tensor want = group_norm(x, g, b, 32, 1e-6f, Activation::kSilu);
  EXPECT_NE(want.data(), x.data());  // x is shared (held here): a new tensor
  Tensor own = x.clone();
  const float* storage = own.data();
  const Tensor y = group_norm(std::move(own), g, b, 32, 1e-6f, Activation::kSilu);
  EXPECT_EQ(y.data(), storage);
  EXPECT_TRUE(close(y, want, 0.0));
  const Tensor view = x.slice0(1, 2);  // a view shares x's storage
  EXPECT_NE(group_norm(view, g, b, 32, 1e-6f).data(), view.data());
  EXPECT_TRUE(close(x.slice0(1, 2), view, 0.0));
}

TEST(GroupNorm, LargeOffsetIsStable) {
  // Two-pass statistics: a large mean does not swamp a small variance.
  Tensor x = random_tensor({1, 4096, 32}, 9, 0.01f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] += 1000.0f;
  const Tensor g = Tensor::full({32}, 1.0f), b = Tensor::zeros({32});
  EXPECT_TRUE(close(group_norm(x, g, b, 8, 1e-6f),
                    naive_group_norm(x, g, b, 8, 1e-6f, Activation::kNone), 1e-3));
}

TEST(Elementwise, FastExpIsAccurate) {
  double worst = 0;
  for (int i = -870000; i <= 880000; ++i) {
    const float x = static_cast<float>(i) * 1e-4f;
    const double ref = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(exp_fast(x) - ref) / ref);
  }
  EXPECT_LT(worst, 3e-7);                           // ~2 ulp
  EXPECT_EQ(exp_fast(-1000.0f), exp_fast(-87.3f));  // clamped, finite, positive
  EXPECT_GT(exp_fast(-1000.0f), 0.0f);
  EXPECT_TRUE(std::isfinite(exp_fast(1000.0f)));
}

// Each register width (4, 8 and 16 floats: SSE, AVX2, AVX-512) and the scalar tail of the same
// span compute the same function: spans of every remainder against the scalar form, element by
// element, and the softmax sums bitwise the same at every width (one order of additions).
template <int kLanes>
void check_vector_width(int64_t n, const Tensor& x, float* sum) {
  std::vector<float> silu(static_cast<size_t>(n)), e(x.data(), x.data() + n);
  silu_span<kLanes>(x.data(), silu.data(), n);
  *sum = exp_shifted_span<kLanes>(e.data(), n, 3.0f);
  double want_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x.data()[i];
    EXPECT_NEAR(silu[i], silu_fast(v), 2e-7 * std::max(1.0f, std::abs(v)))
        << kLanes << " " << n << " " << i;
    EXPECT_NEAR(e[i], exp_fast(v - 3.0f), 2e-7 * exp_fast(v - 3.0f))
        << kLanes << " " << n << " " << i;
    want_sum += std::exp(static_cast<double>(v) - 3.0);
  }
  EXPECT_NEAR(*sum, want_sum, 1e-6 * want_sum) << kLanes << " " << n;
}

TEST(Elementwise, VectorWidthsAgreeWithTheScalarForm) {
  for (const int64_t n : {1, 7, 8, 15, 16, 27, 40}) {
    const Tensor x = random_tensor({n}, 20 + static_cast<uint64_t>(n), 12.0f);
    float sum4 = 0, sum8 = 0, sum16 = 0;
    check_vector_width<4>(n, x, &sum4);
    check_vector_width<8>(n, x, &sum8);
    check_vector_width<16>(n, x, &sum16);
    EXPECT_EQ(sum4, sum16) << n;
    EXPECT_EQ(sum8, sum16) << n;
  }
}

TEST(Elementwise, Activations) {
  Tensor x = random_tensor({1000}, 3, 10.0f), y = x.clone(), r = x.clone();
  activate_inplace(y, Activation::kSilu);
  activate_inplace(r, Activation::kRelu);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = x.data()[i];
    EXPECT_NEAR(y.data()[i], v / (1.0 + std::exp(-v)), 1e-5 * std::max(1.0, std::abs(v)));
    EXPECT_EQ(r.data()[i], v > 0 ? static_cast<float>(v) : 0.0f);
  }
}

TEST(Resample, NearestUpsampling) {
  const Tensor x = random_tensor({2, 3, 4, 5}, 1);  // (N, H, W, C)
  const Tensor y = upsample_nearest(x, {2, 3});
  ASSERT_EQ(y.shape(), (Shape{2, 6, 12, 5}));
  const View5 in(x), out(y);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t j = 0; j < 12; ++j)
        for (int64_t c = 0; c < 5; ++c)
          ASSERT_EQ(out.at(n, 0, i, j, c), in.at(n, 0, i / 2, j / 3, c));
  const Tensor x3 = random_tensor({1, 2, 3, 2, 4}, 2);  // (N, T, H, W, C)
  const Tensor y3 = upsample_nearest(x3, {2, 2, 2});
  const View5 in3(x3), out3(y3);
  for (int64_t t = 0; t < 4; ++t)
    for (int64_t i = 0; i < 6; ++i)
      for (int64_t j = 0; j < 4; ++j)
        for (int64_t c = 0; c < 4; ++c)
          ASSERT_EQ(out3.at(0, t, i, j, c), in3.at(0, t / 2, i / 2, j / 2, c));
}

TEST(Resample, Padding) {
  const Tensor x = random_tensor({1, 3, 4, 2}, 4);
  const Tensor z = pad(x, {0, 0}, {1, 1}, PadMode::kZeros);  // the ae2d (0, 1, 0, 1) pad
  ASSERT_EQ(z.shape(), (Shape{1, 4, 5, 2}));
  const View5 in(x), zero(z);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 5; ++j)
      for (int64_t c = 0; c < 2; ++c)
        ASSERT_EQ(zero.at(0, 0, i, j, c), (i < 3 && j < 4) ? in.at(0, 0, i, j, c) : 0.0f);

  const Tensor x3 = random_tensor({1, 2, 3, 3, 2}, 5);
  const Tensor r = pad(x3, {2, 1, 1}, {0, 1, 1}, PadMode::kReplicate);  // causal-conv padding
  ASSERT_EQ(r.shape(), (Shape{1, 4, 5, 5, 2}));
  const View5 in3(x3), rep(r);
  const auto clampi = [](int64_t v, int64_t hi) { return std::clamp<int64_t>(v, 0, hi - 1); };
  for (int64_t t = 0; t < 4; ++t)
    for (int64_t i = 0; i < 5; ++i)
      for (int64_t j = 0; j < 5; ++j)
        for (int64_t c = 0; c < 2; ++c)
          ASSERT_EQ(rep.at(0, t, i, j, c),
                    in3.at(0, clampi(t - 2, 2), clampi(i - 1, 3), clampi(j - 1, 3), c));
}

// UpsampleConv against the direct route: upsample, pad the upsampled tensor, convolve (oneDNN
// direct), in each --conv-algo (few channels stay on the phase kernels, 16 and more take
// Winograd's index maps).
void check_upsample_conv(const Shape& x_shape, int dims, std::array<bool, 3> up, PadMode mode,
                         std::vector<int64_t> other_pad_lo, uint64_t seed, int64_t cout = 5) {
  const int64_t cin = x_shape.back();
  Shape wshape = {cout, cin};
  for (int d = 0; d < dims; ++d) wshape.push_back(3);
  const Tensor x = random_tensor(x_shape, seed), w = random_tensor(wshape, seed + 1, 0.3f),
               b = random_tensor({cout}, seed + 2);
  std::vector<int64_t> factors, lo_small, hi_small, lo_big, hi_big;
  for (int d = 0; d < dims; ++d) {
    const bool u = up[static_cast<size_t>(d)];
    factors.push_back(u ? 2 : 1);
    lo_small.push_back(u ? 1 : other_pad_lo[static_cast<size_t>(d)]);
    hi_small.push_back(u ? 1 : 0);
    lo_big.push_back(u ? 1 : other_pad_lo[static_cast<size_t>(d)]);
    hi_big.push_back(u ? 1 : 0);
  }
  Tensor expected;
  {
    const ComputeScope direct_mode({Precision::kFp32, ConvAlgorithm::kDirect});
    const Conv direct(w, b, ConvGeometry::uniform(dims, 1, 0));
    expected = direct(pad(upsample_nearest(x, factors), lo_big, hi_big, mode));
  }
  const UpsampleConv fused(w, b, dims, up);
  for (const ConvAlgorithm algo : {ConvAlgorithm::kDirect, ConvAlgorithm::kWinograd}) {
    const ComputeScope scope({Precision::kFp32, algo});
    const Tensor got = fused(pad(x, lo_small, hi_small, mode));
    EXPECT_TRUE(close(got, expected, 1e-5))
        << to_string(x_shape) << " " << conv_algorithm_name(algo);
  }
}

TEST(UpsampleConv, MatchesUpsampleThenConv) {
  check_upsample_conv({1, 5, 7, 4}, 2, {true, true, false}, PadMode::kZeros, {0, 0}, 1);
  check_upsample_conv({2, 6, 3, 8}, 2, {true, true, false}, PadMode::kReplicate, {0, 0}, 2);
  // 3-D: all axes upsampled (DC-AE InterpolateConv), and H, W only with a causal time pad of 2.
  check_upsample_conv({1, 3, 4, 5, 3}, 3, {true, true, true}, PadMode::kZeros, {0, 0, 0}, 3);
  check_upsample_conv({1, 4, 3, 5, 4}, 3, {false, true, true}, PadMode::kReplicate, {2, 0, 0}, 4);
}

TEST(UpsampleConv, WinogradIndexMapsMatchUpsampleThenConv) {
  check_upsample_conv({2, 5, 7, 16}, 2, {true, true, false}, PadMode::kZeros, {0, 0}, 5, 20);
  check_upsample_conv({1, 6, 3, 24}, 2, {true, true, false}, PadMode::kReplicate, {0, 0}, 6, 40);
  check_upsample_conv({1, 3, 4, 5, 16}, 3, {true, true, true}, PadMode::kZeros, {0, 0, 0}, 7, 16);
  check_upsample_conv({1, 4, 3, 5, 16}, 3, {false, true, true}, PadMode::kReplicate, {2, 0, 0}, 8,
                      33);
  check_upsample_conv({1, 3, 4, 4, 16}, 3, {true, true, true}, PadMode::kReplicate, {0, 0, 0}, 9,
                      16);
}

Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                       int64_t frame) {
  const int64_t n = q.dim(0), l = q.dim(1), d = q.dim(2);
  Tensor o = Tensor::zeros(q.shape());
  std::vector<double> s(static_cast<size_t>(l));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < l; ++i) {
      const int64_t keys = frame > 0 ? (i / frame + 1) * frame : l;
      double mx = -std::numeric_limits<double>::infinity(), sum = 0;
      for (int64_t j = 0; j < keys; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < d; ++c)
          dot += double{q.data()[(b * l + i) * d + c]} * k.data()[(b * l + j) * d + c];
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
      }
      for (int64_t j = 0; j < keys; ++j) sum += (s[j] = std::exp(s[j] - mx));
      for (int64_t c = 0; c < d; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < keys; ++j) acc += s[j] * v.data()[(b * l + j) * d + c];
        o.data()[(b * l + i) * d + c] = static_cast<float>(acc / sum);
      }
    }
  return o;
}

TEST(Attention, MatchesSoftmaxFormula) {
  // Lengths that straddle the query and key blocks.
  for (const Shape& shape : {Shape{1, 7, 8}, Shape{2, 300, 16}, Shape{1, 600, 32}}) {
    const Tensor q = random_tensor(shape, 1, 2.0f), k = random_tensor(shape, 2, 2.0f),
                 v = random_tensor(shape, 3);
    const float scale = 1.0f / std::sqrt(static_cast<float>(shape[2]));
    EXPECT_TRUE(close(attention(q, k, v, scale), naive_attention(q, k, v, scale, 0), 1e-5));
  }
}

TEST(Attention, FrameCausalMaskByBlocks) {
  const Shape shape = {2, 5 * 70, 8};  // 5 frames of 70 tokens
  const Tensor q = random_tensor(shape, 4, 2.0f), k = random_tensor(shape, 5, 2.0f),
               v = random_tensor(shape, 6);
  EXPECT_TRUE(close(attention(q, k, v, 0.3f, 70), naive_attention(q, k, v, 0.3f, 70), 1e-5));
  EXPECT_THROW(attention(q, k, v, 0.3f, 69), Error);
}

TEST(Attention, SharpScoresStayFinite) {
  // Large logits exercise the running-max rescaling of the online softmax.
  const Shape shape = {1, 520, 4};
  const Tensor q = random_tensor(shape, 7, 30.0f), k = random_tensor(shape, 8, 30.0f),
               v = random_tensor(shape, 9);
  EXPECT_TRUE(close(attention(q, k, v, 1.0f), naive_attention(q, k, v, 1.0f, 0), 1e-4));
}

TEST(Layout, ChannelsLastRoundTrip) {
  const Tensor x = random_tensor({2, 3, 4, 5, 6}, 1);  // (B, C, T, H, W)
  const Tensor cl = to_channels_last(x);
  ASSERT_EQ(cl.shape(), (Shape{2, 4, 5, 6, 3}));
  EXPECT_EQ(cl.data()[((((1 * 4 + 2) * 5 + 3) * 6 + 4) * 3) + 1],
            x.data()[(((1 * 3 + 1) * 4 + 2) * 5 + 3) * 6 + 4]);
  EXPECT_EQ(max_abs_diff(to_channels_first(cl), x), 0.0);
}

TEST(Layout, CropAndPaste) {
  const Tensor x = random_tensor({2, 3, 5, 6, 7}, 2);
  const Box box{1, 4, 2, 5, 3, 7};
  const Tensor crop = crop_to_channels_last(x, 1, box);
  ASSERT_EQ(crop.shape(), (Shape{1, 3, 3, 4, 3}));
  Tensor back = Tensor::zeros(x.shape());
  paste_channels_first(crop, back, 1, box.t0, box.h0, box.w0);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t t = 0; t < 5; ++t)
      for (int64_t h = 0; h < 6; ++h)
        for (int64_t w = 0; w < 7; ++w) {
          const int64_t i = (((1 * 3 + c) * 5 + t) * 6 + h) * 7 + w;
          const bool inside = t >= 1 && t < 4 && h >= 2 && h < 5 && w >= 3 && w < 7;
          ASSERT_EQ(back.data()[i], inside ? x.data()[i] : 0.0f);
        }
  EXPECT_THROW(crop_to_channels_last(x, 2, box), Error);
  EXPECT_THROW(paste_channels_first(crop, back, 1, 3, 0, 0), Error);
}

}  // namespace
}  // namespace vvae::test
