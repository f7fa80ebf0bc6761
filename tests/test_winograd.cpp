// vvae's Winograd F(4x4, 3x3) convolutions against the definition (double-precision direct
// sums), on every instruction set the CPU has, and through Conv in each --conv-algo.
#include <omp.h>

#include <cmath>

#include "core/cpu.hpp"
#include "core/profile.hpp"
#include "ops/conv.hpp"
#include "ops/resample.hpp"
#include "ops/upsample_conv.hpp"
#include "ops/winograd.hpp"
#include "ops/winograd_kernels.hpp"
#include "test_util.hpp"
#include "vvae/error.hpp"

namespace vvae::test {
namespace {

// y = conv(x) from the definition; x (N, T, H, W, C) with the axes' index maps, weight
// (O, I, kt, 3, 3).
Tensor reference(const Tensor& x, const Tensor& w, const Tensor& b, const WinogradAxis& t,
                 const WinogradAxis& h, const WinogradAxis& ax) {
  const int64_t n = x.dim(0), c = x.dim(4), o = w.dim(0), kt = w.dim(2);
  const int64_t ot = t.out(), oh = h.out(), ow = ax.out();
  Tensor y = Tensor::empty({n, ot, oh, ow, o});
  for (int64_t s = 0; s < n; ++s)
    for (int64_t z = 0; z < ot; ++z)
      for (int64_t yy = 0; yy < oh; ++yy)
        for (int64_t xx = 0; xx < ow; ++xx)
          for (int64_t co = 0; co < o; ++co) {
            double acc = b.numel() ? b.data()[co] : 0.0;
            for (int64_t a = 0; a < kt; ++a)
              for (int64_t p = 0; p < 3; ++p)
                for (int64_t q = 0; q < 3; ++q) {
                  const int64_t sz = t.source(z + a), sy = h.source(yy + p), sx = ax.source(xx + q);
                  if (sz < 0 || sy < 0 || sx < 0) continue;
                  const float* in =
                      x.data() + (((s * x.dim(1) + sz) * x.dim(2) + sy) * x.dim(3) + sx) * c;
                  const float* wt = w.data() + (co * c * kt + a) * 9 + p * 3 + q;
                  for (int64_t ci = 0; ci < c; ++ci) acc += double{in[ci]} * wt[ci * kt * 9];
                }
            y.data()[(((s * ot + z) * oh + yy) * ow + xx) * o + co] = static_cast<float>(acc);
          }
  return y;
}

// F(4x4, 3x3) in float32 carries a few 1e-6 of relative error per convolution on unit-scale
// data (its transforms scale values by up to 8x before rounding), against ~1e-7 for direct sums;
// the models' golden and full-size tests bound what that adds up to.
constexpr double kTolerance = 1e-5;

struct Case {
  Shape x;  // (N, T, H, W, C)
  int64_t out, kt;
  WinogradAxis t, h, w;
};

void check(const Case& c, uint64_t seed) {
  const Tensor x = random_tensor(c.x, seed);
  const Tensor w = random_tensor({c.out, c.x[4], c.kt, 3, 3}, seed + 1, 0.2f);
  const Tensor b = random_tensor({c.out}, seed + 2);
  const Tensor expected = reference(x, w, b, c.t, c.h, c.w);
  const WinogradConv conv(w, b);
  Tensor y = Tensor::empty(expected.shape());
  conv.run(x, y, c.t, c.h, c.w, false);
  EXPECT_TRUE(close(y, expected, kTolerance)) << to_string(c.x);
  // dst += conv(x)
  Tensor acc = random_tensor(expected.shape(), seed + 3);
  Tensor want = acc.clone();
  for (int64_t i = 0; i < want.numel(); ++i) want.data()[i] += expected.data()[i];
  conv.run(x, acc, c.t, c.h, c.w, true);
  EXPECT_TRUE(close(acc, want, kTolerance)) << to_string(c.x);
}

WinogradAxis padded(int64_t size, int64_t lo, int64_t hi, int64_t kernel = 3) {
  return {size, kernel, lo, hi, false};
}
WinogradAxis upsampled(int64_t padded_size) {
  return {padded_size, 3, 0, 0, true};
}

TEST(Winograd, TwoDimensionalLikeAConv2d) {
  // Sizes that are not multiples of the 4x4 tile, channels not multiples of the vector or of
  // the 32-channel filter block, two samples.
  check({{2, 1, 9, 7, 20}, 37, 1, padded(1, 0, 0, 1), padded(9, 1, 1), padded(7, 1, 1)}, 1);
  check({{1, 1, 16, 16, 32}, 64, 1, padded(1, 0, 0, 1), padded(16, 1, 1), padded(16, 1, 1)}, 2);
  // No padding, asymmetric padding.
  check({{1, 1, 6, 11, 16}, 16, 1, padded(1, 0, 0, 1), padded(6, 0, 0), padded(11, 0, 2)}, 3);
  // More tiles than one block holds: the blocked schedule (the cases above fit one block).
  check({{1, 1, 40, 37, 16}, 40, 1, padded(1, 0, 0, 1), padded(40, 1, 1), padded(37, 1, 1)}, 31);
}

TEST(Winograd, ThreeDimensionalSumsTemporalTaps) {
  // Zero padding in time (DC-AE), a pre-padded causal input (HunyuanVideo: pad 0), one frame.
  check({{1, 5, 6, 5, 24}, 17, 3, padded(5, 1, 1), padded(6, 1, 1), padded(5, 1, 1)}, 4);
  check({{2, 4, 5, 9, 16}, 33, 3, padded(4, 0, 0), padded(5, 1, 1), padded(9, 1, 1)}, 5);
  check({{1, 1, 8, 8, 16}, 16, 3, padded(1, 1, 1), padded(8, 1, 1), padded(8, 1, 1)}, 6);
  check({{1, 4, 24, 25, 16}, 20, 3, padded(4, 1, 1), padded(24, 1, 1), padded(25, 1, 1)}, 32);
}

TEST(Winograd, ReadsUpsampledInputThroughIndexMaps) {
  // Nearest x2 of an input padded by one (UpsampleConv): spatial only, and in time too.
  check({{1, 1, 5, 6, 16}, 20, 1, padded(1, 0, 0, 1), upsampled(5), upsampled(6)}, 7);
  check({{1, 4, 4, 5, 16}, 16, 3, upsampled(4), upsampled(4), upsampled(5)}, 8);
  check({{1, 5, 4, 4, 16}, 16, 3, padded(5, 0, 0), upsampled(4), upsampled(4)}, 9);
  check({{1, 3, 13, 12, 16}, 16, 3, upsampled(3), upsampled(13), upsampled(12)}, 33);
}

TEST(Winograd, InputChannelsInSeveralChunks) {
  // Below AVX-512 the products run 64 input channels per call (ops/winograd.cpp): two full
  // chunks and a narrower one, in one block (3-D) and in the blocked schedule (2-D).
  check({{1, 3, 9, 10, 150}, 40, 3, padded(3, 1, 1), padded(9, 1, 1), padded(10, 1, 1)}, 34);
  check({{1, 1, 40, 37, 136}, 33, 1, padded(1, 0, 0, 1), padded(40, 1, 1), padded(37, 1, 1)}, 35);
}

TEST(Winograd, SameBitsForAnyThreadCount) {
  const Tensor x = random_tensor({1, 3, 37, 29, 48}, 11);
  const Tensor w = random_tensor({40, 48, 3, 3, 3}, 12, 0.2f), b = random_tensor({40}, 13);
  const WinogradAxis t = padded(3, 1, 1), h = padded(37, 1, 1), ax = padded(29, 1, 1);
  const WinogradConv conv(w, b);
  const int before = omp_get_max_threads();
  Tensor one = Tensor::empty({1, 3, 37, 29, 40}), many = Tensor::empty(one.shape());
  omp_set_num_threads(1);
  conv.run(x, one, t, h, ax, false);
  omp_set_num_threads(std::max(2, before));
  conv.run(x, many, t, h, ax, false);
  omp_set_num_threads(before);
  EXPECT_EQ(max_abs_diff(one, many), 0.0);
}

// The transforms of each instruction set against scalar arithmetic in double precision.
class WinogradKernels : public ::testing::TestWithParam<Isa> {};

TEST_P(WinogradKernels, TransformsMatchTheirMatrices) {
  const Isa isa = GetParam();
  if (isa > cpu_isa())
    GTEST_SKIP() << isa_name(isa) << " is above this CPU's " << isa_name(cpu_isa());
  const winograd::Kernels& k = winograd::kernels(isa);
  const double bt[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                           {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  const double at[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
  const double g[6][3] = {{0.25, 0, 0},
                          {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                          {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                          {1.0 / 24, 1.0 / 12, 1.0 / 6},
                          {1.0 / 24, -1.0 / 12, 1.0 / 6},
                          {0, 0, 1}};
  const int64_t channels = 37;  // vectors and a scalar tail
  const Tensor d = random_tensor({36, channels}, 21);
  const float* patch[36];
  for (int i = 0; i < 36; ++i) patch[i] = d.data() + i * channels;
  Tensor v = Tensor::empty({36, channels});
  k.input_tile(patch, channels, v.data(), channels);
  Tensor y = Tensor::empty({16, channels});
  float* pixels[16];
  for (int i = 0; i < 16; ++i) pixels[i] = y.data() + i * channels;
  const Tensor bias = random_tensor({channels}, 22);
  k.output_tile(d.data(), channels, channels, bias.data(), pixels, false);
  const Tensor taps = random_tensor({9, channels}, 23);  // one row per tap
  Tensor u = Tensor::empty({36, channels});
  k.weight_block(taps.data(), channels, channels, u.data(), channels);
  double worst = 0;
  for (int64_t c = 0; c < channels; ++c)
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 6; ++j) {
        double vin = 0, wu = 0;
        for (int a = 0; a < 6; ++a)
          for (int b2 = 0; b2 < 6; ++b2)
            vin += bt[i][a] * d.data()[(a * 6 + b2) * channels + c] * bt[j][b2];
        for (int a = 0; a < 3; ++a)
          for (int b2 = 0; b2 < 3; ++b2)
            wu += g[i][a] * taps.data()[(a * 3 + b2) * channels + c] * g[j][b2];
        worst = std::max({worst, std::abs(vin - v.data()[(i * 6 + j) * channels + c]) / 50,
                          std::abs(wu - u.data()[(i * 6 + j) * channels + c])});
        if (i < 4 && j < 4) {
          double out = bias.data()[c];
          for (int a = 0; a < 6; ++a)
            for (int b2 = 0; b2 < 6; ++b2)
              out += at[i][a] * d.data()[(a * 6 + b2) * channels + c] * at[j][b2];
          worst = std::max(worst, std::abs(out - y.data()[(i * 4 + j) * channels + c]) / 200);
        }
      }
  EXPECT_LT(worst, 1e-6) << isa_name(isa);
}

INSTANTIATE_TEST_SUITE_P(EveryIsa, WinogradKernels,
                         ::testing::Values(Isa::kSse41, Isa::kAvx2, Isa::kAvx512),
                         [](const auto& param) { return std::string(isa_name(param.param)); });

// Through Conv: --conv-algo winograd (and auto) against direct, with the fused residual add.
TEST(Winograd, ConvModesAgree) {
  const Tensor x = random_tensor({1, 4, 10, 12, 32}, 31);
  const Tensor w = random_tensor({24, 32, 3, 3, 3}, 32, 0.2f), b = random_tensor({24}, 33);
  const Conv conv(w, b, ConvGeometry::uniform(3, 1, 1));
  Tensor direct_acc = random_tensor({1, 4, 10, 12, 24}, 34), wino_acc = direct_acc.clone();
  Tensor direct, wino;
  {
    const ComputeScope s({Precision::kFp32, ConvAlgorithm::kDirect});
    direct = conv(x);
    conv.accumulate(x, direct_acc);
  }
  for (const ConvAlgorithm algo : {ConvAlgorithm::kWinograd, ConvAlgorithm::kAuto}) {
    const ComputeScope s({Precision::kFp32, algo});
    wino = conv(x);
    Tensor acc = wino_acc.clone();
    conv.accumulate(x, acc);
    EXPECT_TRUE(close(wino, direct, kTolerance));
    EXPECT_TRUE(close(acc, direct_acc, kTolerance));
    EXPECT_GT(max_abs_diff(wino, direct), 0.0);  // a different algorithm really ran
  }
}

// Frames of fewer than four tiles run tap-wise on Winograd's packed weights (no second copy);
// larger ones stay Winograd. Both match the direct convolution, padded and accumulating, with
// output channels that leave a partial panel.
TEST(Winograd, SmallFramesRunTapWiseOnItsWeights) {
  const Tensor w = random_tensor({40, 24, 3, 3, 3}, 51, 0.2f), b = random_tensor({40}, 52);
  const Conv conv(w, b, ConvGeometry::uniform(3, 1, 0));
  const PadSpec causal{{2, 1, 1}, {0, 1, 1}, PadMode::kReplicate};
  for (const int64_t side : {4, 8}) {
    const Tensor x = random_tensor({2, 3, side, side, 24}, 53);
    Tensor direct, acc_direct = random_tensor({2, 3, side, side, 40}, 54);
    Tensor acc = acc_direct.clone();
    {
      const ComputeScope s({Precision::kFp32, ConvAlgorithm::kDirect});
      direct = conv.padded(x, causal);
      conv.accumulate_padded(x, causal, acc_direct);
    }
    const ComputeScope s({Precision::kFp32, ConvAlgorithm::kAuto});
    set_profiling(true);
    take_profile();
    const Tensor y = conv.padded(x, causal);
    conv.accumulate_padded(x, causal, acc);
    const std::vector<ProfileEntry> ran = take_profile();
    set_profiling(false);
    ASSERT_FALSE(ran.empty());
    EXPECT_EQ(ran[0].op, side == 4 ? "conv gemm 3x3x3" : "conv winograd 3x3x3") << side;
    EXPECT_TRUE(close(y, direct, kTolerance)) << side;
    EXPECT_TRUE(close(acc, acc_direct, kTolerance)) << side;
  }
}

TEST(Winograd, RefusesBf16) {
  EXPECT_THROW(check_compute_mode({Precision::kBf16, ConvAlgorithm::kWinograd}), Error);
}

}  // namespace
}  // namespace vvae::test

namespace vvae::test {
namespace {

// Padding read through index maps equals padding a copy first, in every mode: a causal 3-D
// convolution (replicate, two frames in front), a 2-D one, and the fused upsampling.
TEST(Winograd, PaddingThroughIndexMapsEqualsPaddedCopies) {
  const Tensor x3 = random_tensor({1, 4, 9, 10, 16}, 41),
               w3 = random_tensor({20, 16, 3, 3, 3}, 42, 0.2f);
  const Tensor b = random_tensor({20}, 43), x2 = random_tensor({2, 11, 7, 16}, 44);
  const Tensor w2 = random_tensor({20, 16, 3, 3}, 45, 0.2f);
  const Conv c3(w3, b, ConvGeometry::uniform(3, 1, 0)), c2(w2, b, ConvGeometry::uniform(2, 1, 0));
  const UpsampleConv up(w3, b, 3, {false, true, true});
  for (const PadMode mode : {PadMode::kReplicate, PadMode::kZeros}) {
    const PadSpec causal{{2, 1, 1}, {0, 1, 1}, mode}, flat{{1, 1}, {1, 1}, mode};
    for (const ConvAlgorithm algo : {ConvAlgorithm::kWinograd, ConvAlgorithm::kDirect}) {
      const ComputeScope scope({Precision::kFp32, algo});
      EXPECT_TRUE(close(c3.padded(x3, causal), c3(pad(x3, causal.lo, causal.hi, mode)), 1e-6));
      EXPECT_TRUE(close(c2.padded(x2, flat), c2(pad(x2, flat.lo, flat.hi, mode)), 1e-6));
      EXPECT_TRUE(close(up.padded(x3, causal), up(pad(x3, causal.lo, causal.hi, mode)), 1e-6))
          << conv_algorithm_name(algo) << " " << (mode == PadMode::kZeros ? "zeros" : "replicate");
      Tensor acc = random_tensor(c3.output_shape(pad(x3, causal.lo, causal.hi, mode).shape()), 46);
      Tensor want = acc.clone();
      c3.accumulate(pad(x3, causal.lo, causal.hi, mode), want);
      c3.accumulate_padded(x3, causal, acc);
      EXPECT_TRUE(close(acc, want, 1e-6));
    }
  }
}

}  // namespace
}  // namespace vvae::test
