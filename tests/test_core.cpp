// Tensors, counter-based random numbers, threads.
#include <omp.h>

#include <cmath>

#include "core/memory_stats.hpp"
#include "core/random.hpp"
#include "core/threads.hpp"
#include "models/posterior.hpp"
#include "test_util.hpp"
#include "vvae/error.hpp"
#include "vvae/memory.hpp"
#include "vvae/model.hpp"

namespace vvae::test {
namespace {

TEST(Tensor, ShapesViewsAndCopies) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_THROW(t.dim(3), Error);
  EXPECT_THROW(t.reshape({5, 5}), Error);
  EXPECT_THROW(Tensor::empty({1, 1, 1, 1, 1, 1}), Error);
  Tensor v = t.reshape({6, 4});
  v.data()[5] = 7.0f;
  EXPECT_EQ(t.data()[5], 7.0f);  // views share storage
  Tensor s = t.slice0(1, 2);
  EXPECT_EQ(s.shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(s.data(), t.data() + 12);
  Tensor c = t.clone();
  c.data()[5] = 1.0f;
  EXPECT_EQ(t.data()[5], 7.0f);
  EXPECT_FALSE(t.storage_unique());  // v and s share it
  EXPECT_TRUE(c.storage_unique());
}

TEST(Tensor, DefinednessIsHonest) {
  const Tensor none;
  EXPECT_FALSE(none.defined());
  EXPECT_FALSE(none.has_data());
  const Tensor empty = Tensor::empty({0, 3});
  EXPECT_TRUE(empty.defined());
  EXPECT_TRUE(empty.has_data());  // no elements: nothing missing
  const Tensor full = Tensor::zeros({2});
  EXPECT_TRUE(full.defined() && full.has_data());
  const Tensor shape_only = Tensor::borrow({2, 3}, nullptr, nullptr);  // as a plan's weights
  EXPECT_TRUE(shape_only.defined());
  EXPECT_FALSE(shape_only.has_data());
}

TEST(Tensor, SixtyFourBitSizes) {
  // Shapes past 2^31 elements are represented exactly (no allocation needed to check).
  const Shape big = {1, 128, 129, 512, 512};
  EXPECT_EQ(numel(big), int64_t{128} * 129 * 512 * 512);
  EXPECT_GT(numel(big), int64_t{1} << 31);
}

TEST(Tensor, MemoryStatsTrackLiveBytes) {
  const int64_t before = live_tensor_bytes();
  {
    Tensor t = Tensor::empty({1000});
    EXPECT_EQ(live_tensor_bytes(), before + 4000);
  }
  EXPECT_EQ(live_tensor_bytes(), before);
}

constexpr int64_t kLargeFloats = int64_t{4} << 20;  // 16 MiB: a mapped block

TEST(Tensor, LargeBlocksAreReusedOnlyDuringARun) {
  const int64_t before = live_tensor_bytes();
  {
    const LargeBlockReuse run;
    const float* first = Tensor::empty({kLargeFloats}).data();
    EXPECT_EQ(kept_tensor_bytes(), kLargeFloats * 4);
    Tensor again = Tensor::empty({kLargeFloats});
    EXPECT_EQ(again.data(), first);  // the same pages
    EXPECT_EQ(kept_tensor_bytes(), 0);
    EXPECT_EQ(live_tensor_bytes(), before + kLargeFloats * 4);
  }
  EXPECT_EQ(kept_tensor_bytes(), 0);  // the run's end returns what it kept
  { Tensor t = Tensor::empty({kLargeFloats}); }
  EXPECT_EQ(kept_tensor_bytes(), 0);  // outside a run nothing is kept
}

TEST(Tensor, MediumBlocksAreReusedDuringARun) {
  // A convolution's scratch: 256 KiB, mapped (64 KiB and up) rather than from the heap.
  constexpr int64_t kMediumFloats = int64_t{64} << 10;
  const LargeBlockReuse run;
  const float* first = Tensor::empty({kMediumFloats}).data();
  EXPECT_EQ(kept_tensor_bytes(), kMediumFloats * 4);
  EXPECT_EQ(Tensor::empty({kMediumFloats}).data(), first);
}

TEST(Tensor, ALoadedModelKeepsPagesBetweenRuns) {
  const float* first = nullptr;
  {
    const KeepPagesBetweenRuns loaded;
    {
      const LargeBlockReuse run;
      first = Tensor::empty({kLargeFloats}).data();
    }
    EXPECT_EQ(kept_tensor_bytes(), kLargeFloats * 4);  // the run ended, the model lives
    { Tensor t = Tensor::empty({kLargeFloats / 2}); }  // between runs: taken and kept again
    EXPECT_EQ(kept_tensor_bytes(), kLargeFloats * 4);
    {
      const LargeBlockReuse next;  // the next clip: its mark starts at what is kept
      Tensor again = Tensor::empty({kLargeFloats});
      EXPECT_EQ(again.data(), first);
      Tensor more = Tensor::empty({kLargeFloats / 2});  // a new peak, nothing kept to return
      EXPECT_EQ(kept_tensor_bytes(), 0);
    }
    EXPECT_EQ(kept_tensor_bytes(), kLargeFloats * 6);
    const MemoryLimits limits = current_memory_limits();
    if (limits.available >= 0) {
      EXPECT_GE(limits.available, kept_tensor_bytes());
    }
    return_kept_pages();  // a capped run's start
    EXPECT_EQ(kept_tensor_bytes(), 0);
  }
  EXPECT_EQ(kept_tensor_bytes(), 0);  // the model's end returns what its runs kept
}

// (It switches the whole process to the capped rule: ctest runs every test in its own process.)
TEST(Tensor, UnderMemoryCapsOnlyLargeBlocksAreKeptAndOnlyDuringARun) {
  keep_pages_for_memory_caps();
  const KeepPagesBetweenRuns loaded;
  {
    const LargeBlockReuse run;
    { Tensor medium = Tensor::empty({int64_t{64} << 10}); }
    EXPECT_EQ(kept_tensor_bytes(), 0);
    { Tensor large = Tensor::empty({kLargeFloats}); }
    EXPECT_EQ(kept_tensor_bytes(), kLargeFloats * 4);
  }
  EXPECT_EQ(kept_tensor_bytes(), 0);  // the run's end returns it, a model loaded or not
}

TEST(Tensor, KeptBlocksStayUnderTheRunsLivePeak) {
  const LargeBlockReuse run;
  constexpr int64_t kLarge = kLargeFloats * 4;
  {
    Tensor a = Tensor::empty({kLargeFloats}), b = Tensor::empty({kLargeFloats});
  }  // the live peak: 32 MiB
  EXPECT_EQ(kept_tensor_bytes(), 2 * kLarge);
  const float* whole = nullptr;
  {
    // Both kept blocks, whether they join or are returned for fresh pages.
    Tensor bigger = Tensor::empty({2 * kLargeFloats});
    whole = bigger.data();
    EXPECT_EQ(kept_tensor_bytes(), 0);
  }
  {
    Tensor first = Tensor::empty({kLargeFloats});  // half of the kept 32 MiB piece
    EXPECT_EQ(first.data(), whole);
    EXPECT_EQ(kept_tensor_bytes(), kLarge);
    Tensor second = Tensor::empty({kLargeFloats});
    EXPECT_EQ(second.data(), whole + kLargeFloats);
    EXPECT_EQ(kept_tensor_bytes(), 0);
  }
  EXPECT_EQ(Tensor::empty({2 * kLargeFloats}).data(), whole);  // the halves joined again
  Tensor held = Tensor::empty({2 * kLargeFloats});
  { Tensor more = Tensor::empty({kLargeFloats}); }  // live 48 MiB, a new peak; 16 kept
  EXPECT_EQ(kept_tensor_bytes(), kLarge);
  Tensor small = Tensor::empty({1024});  // small blocks count too: 32 + 4 KiB + 16 > 48
  EXPECT_EQ(kept_tensor_bytes(), 0);
}

TEST(Random, PhiloxKnownAnswers) {
  // Random123's known-answer vectors for philox4x32-10.
  uint32_t out[4];
  Philox4x32::generate(0, 0, 0, out);
  EXPECT_EQ(out[0], 0x6627e8d5u);
  EXPECT_EQ(out[1], 0xe169c58du);
  EXPECT_EQ(out[2], 0xbc57ac4cu);
  EXPECT_EQ(out[3], 0x9b00dbd8u);
  Philox4x32::generate(~0ull, ~0ull, ~0ull, out);
  EXPECT_EQ(out[0], 0x408f276du);
  EXPECT_EQ(out[1], 0x41c83b0eu);
  EXPECT_EQ(out[2], 0xa20bc7c6u);
  EXPECT_EQ(out[3], 0x6d5451fdu);
}

TEST(Random, NormalMoments) {
  const int n = 200000;
  double sum = 0, sq = 0;
  for (int i = 0; i < n; ++i) {
    const double v = normal_at(42, static_cast<uint64_t>(i));
    sum += v;
    sq += v * v;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.01);
}

TEST(Threads, ParallelForCoversRangeOnce) {
  std::vector<int> hits(1000, 0);
  parallel_for(1000, 7, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)] += 1;
  });
  for (int h : hits) ASSERT_EQ(h, 1);
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(0);
  EXPECT_EQ(num_threads(), omp_get_num_procs());
}

Tensor moments_for_test() {
  Tensor m = random_tensor({2, 6, 3, 4, 5}, 11, 2.0f);
  m.data()[3 * 60 + 1] = 50.0f;   // sample 0, logvar channel 0: clamped to 20
  m.data()[3 * 60 + 2] = -50.0f;  // clamped to -30
  return m;
}

TEST(Posterior, SplitsAndClamps) {
  const Tensor m = moments_for_test();
  const DiagonalGaussian g = DiagonalGaussian::from_moments(m);
  ASSERT_EQ(g.mean().shape(), (Shape{2, 3, 3, 4, 5}));
  const int64_t half = 3 * 3 * 4 * 5;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < half; ++i) {
      ASSERT_EQ(g.mean().data()[b * half + i], m.data()[b * 2 * half + i]);
      ASSERT_EQ(g.logvar().data()[b * half + i],
                std::clamp(m.data()[b * 2 * half + half + i], -30.0f, 20.0f));
    }
  EXPECT_EQ(g.logvar().data()[1], 20.0f);
  EXPECT_EQ(g.logvar().data()[2], -30.0f);
  EXPECT_FLOAT_EQ(g.std().data()[5], std::exp(0.5f * g.logvar().data()[5]));
  EXPECT_FLOAT_EQ(g.var().data()[5], std::exp(g.logvar().data()[5]));
  EXPECT_EQ(max_abs_diff(g.mode(), g.mean()), 0.0);
  EXPECT_THROW(DiagonalGaussian::from_moments(random_tensor({1, 3, 1, 2, 2}, 1)), Error);
}

TEST(Posterior, KlConventions) {
  const DiagonalGaussian g = DiagonalGaussian::from_moments(moments_for_test());
  const std::vector<double> frames = g.kl_per_frame(), samples = g.kl_per_sample();
  ASSERT_EQ(frames.size(), 6u);  // B * T
  ASSERT_EQ(samples.size(), 2u);
  const Tensor& m = g.mean();
  const Tensor& lv = g.logvar();
  for (int64_t b = 0; b < 2; ++b) {
    double total = 0;
    for (int64_t t = 0; t < 3; ++t) {
      double s = 0;
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < 20; ++i) {
          const int64_t k = ((b * 3 + c) * 3 + t) * 20 + i;
          const double mu = m.data()[k], l = lv.data()[k];
          s += 0.5 * (mu * mu + std::exp(l) - 1.0 - l);
        }
      EXPECT_NEAR(frames[static_cast<size_t>(b * 3 + t)], s, 1e-9 * std::max(1.0, std::abs(s)));
      total += s;
    }
    EXPECT_NEAR(samples[static_cast<size_t>(b)], total, 1e-9 * std::max(1.0, std::abs(total)));
  }
}

TEST(Posterior, SampleIsSeededAndThreadIndependent) {
  Tensor moments = random_tensor({1, 8, 4, 16, 16}, 3);
  const DiagonalGaussian g = DiagonalGaussian::from_moments(moments);
  set_num_threads(1);
  const Tensor one = g.sample(7);
  set_num_threads(2);
  const Tensor two = g.sample(7);
  set_num_threads(0);
  EXPECT_EQ(max_abs_diff(one, two), 0.0);
  EXPECT_GT(max_abs_diff(one, g.sample(8)), 0.1);
  // (sample - mean) / std is standard normal.
  double sum = 0, sq = 0;
  const Tensor s = g.std();
  for (int64_t i = 0; i < one.numel(); ++i) {
    const double e = (one.data()[i] - g.mean().data()[i]) / s.data()[i];
    sum += e;
    sq += e * e;
  }
  EXPECT_NEAR(sum / static_cast<double>(one.numel()), 0.0, 0.05);
  EXPECT_NEAR(sq / static_cast<double>(one.numel()), 1.0, 0.05);
}

TEST(Posterior, LatentScaleOrder) {
  Tensor z = Tensor::full({4}, 1.0f);
  apply_latent_scale(z, 0.5, 0.25);  // 0.5 * (1 - 0.25)
  EXPECT_FLOAT_EQ(z.data()[0], 0.375f);
  remove_latent_scale(z, 0.5, 0.25);  // 0.375 / 0.5 + 0.25
  EXPECT_FLOAT_EQ(z.data()[0], 1.0f);
}

// Every error is one line, whatever bytes a user's file put into it (a fuzz finding: a config key
// with a line break made a two-line message).
TEST(Error, ControlCharactersAreEscaped) {
  const Error e(std::string("key 'a\nb\tc") + '\x01' + "\x7f' é");
  EXPECT_EQ(std::string(e.what()), "key 'a\\nb\\tc\\x01\\x7f' é");
}

}  // namespace
}  // namespace vvae::test
