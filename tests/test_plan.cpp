// Plans run with an explicit context (core/plan.hpp), not process-wide counters: plans on
// several threads at once, and a real run beside them, each get exactly what they get alone.
#include <atomic>
#include <thread>

#include "core/dry_run.hpp"
#include "core/plan.hpp"
#include "test_util.hpp"
#include "vvae/model.hpp"
#include "vvae/safetensors.hpp"

namespace vvae::test {
namespace {

::testing::AssertionResult same_plan(const RunPlan& a, const RunPlan& b) {
  if (a.output != b.output || a.notes != b.notes) return ::testing::AssertionFailure() << "shape";
  if (a.peak_activation_bytes != b.peak_activation_bytes ||
      a.largest_activation_bytes != b.largest_activation_bytes ||
      a.scratch_bytes != b.scratch_bytes || a.estimated_peak_bytes != b.estimated_peak_bytes)
    return ::testing::AssertionFailure()
           << "memory " << a.peak_activation_bytes << " vs " << b.peak_activation_bytes;
  if (a.conv_flops != b.conv_flops || a.executed_conv_flops != b.executed_conv_flops)
    return ::testing::AssertionFailure() << "flops " << a.conv_flops << " vs " << b.conv_flops;
  return ::testing::AssertionSuccess();
}

TEST(Plan, ContextsAreSeparateAndNest) {
  PlanContext outer, inner;
  {
    const PlanScope a(outer);
    const Tensor x = Tensor::empty({1000});
    EXPECT_EQ(x.data(), nullptr);
    {
      const PlanScope b(inner);
      const Tensor y = Tensor::empty({10});
      count_conv_flops(7);
    }
    EXPECT_EQ(current_plan(), &outer);
    count_conv_flops(5);
  }
  EXPECT_EQ(current_plan(), nullptr);
  EXPECT_EQ(outer.peak_bytes(), 4000);
  EXPECT_EQ(outer.live_bytes(), 0);
  EXPECT_EQ(outer.conv_flops(), 5);
  EXPECT_EQ(inner.peak_bytes(), 40);
  EXPECT_EQ(inner.conv_flops(), 7);
  // A real run reports to no plan.
  count_conv_flops(100);
  EXPECT_EQ(outer.conv_flops(), 5);
  const Tensor real = Tensor::empty({4});
  EXPECT_NE(real.data(), nullptr);
}

// Two planning threads (two shapes) and a thread encoding, all on one model at once: every plan
// equals the one made alone, and every encode the one run alone.
TEST(Plan, PlansAndRunsAtOnceOnDifferentThreads) {
  LoadOptions o;
  o.model = data_path("golden/hunyuan_tiled");
  const Model model = Model::load(o);
  const SafetensorsFile io =
      SafetensorsFile::open(data_path("golden/hunyuan_tiled/io.safetensors"));
  const Tensor x = io.load("x");
  const Shape other = {2, 3, 33, 64, 40};
  const RunPlan alone_a = model.plan_encode(x.shape());
  const RunPlan alone_b = model.plan_decode(model.plan_encode(other).output);
  const Tensor alone_z = model.encode(x).z;

  std::atomic<bool> go{false};
  std::atomic<int> bad_plans{0}, plans{0};
  const auto planner = [&](bool first) {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < 30; ++i) {
      const RunPlan p =
          first ? model.plan_encode(x.shape()) : model.plan_decode(model.plan_encode(other).output);
      if (!same_plan(p, first ? alone_a : alone_b)) ++bad_plans;
      ++plans;
    }
  };
  std::vector<Tensor> runs;
  std::thread a(planner, true), b(planner, false);
  std::thread runner([&] {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < 3; ++i) runs.push_back(model.encode(x).z);
  });
  go = true;
  a.join();
  b.join();
  runner.join();
  EXPECT_EQ(plans.load(), 60);
  EXPECT_EQ(bad_plans.load(), 0);
  ASSERT_EQ(runs.size(), 3u);
  for (const Tensor& z : runs) EXPECT_TRUE(close(z, alone_z, 1e-6));
  // And after them, a plan alone is still the same.
  EXPECT_TRUE(same_plan(model.plan_encode(x.shape()), alone_a));
}

}  // namespace
}  // namespace vvae::test
