// Plans run with an explicit context (core/plan.hpp), not process-wide counters: plans on
// several threads at once, and a real run beside them, each get exactly what they get alone.
#include <algorithm>
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
  // (Encoded first: a decode's plan counts the encoder's weights once an encode brought them in.)
  const Tensor alone_z = model.encode(x).z;
  const RunPlan alone_a = model.plan_encode(x.shape());
  const RunPlan alone_b = model.plan_decode(model.plan_encode(other).output);

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

// A plan counts the weights the run reads: those of its direction (by checkpoint name), and the
// other direction's once that has run on this model (its weights stay resident, packed).
TEST(Plan, CountsTheWeightsOfTheDirectionThatRuns) {
  LoadOptions o;
  o.model = data_path("golden/hunyuan_tiled");
  const Model model = Model::load(o);
  const ModelInfo& info = model.info();
  int64_t encoder = 0, decoder = 0;
  for (const ParameterInfo& p : info.parameters) {
    const bool enc = p.name.rfind("encoder.", 0) == 0 || p.name.rfind("quant_conv.", 0) == 0;
    const bool dec = p.name.rfind("decoder.", 0) == 0 || p.name.rfind("post_quant_conv.", 0) == 0;
    if (enc) encoder += numel(p.shape);
    if (dec) decoder += numel(p.shape);
  }
  EXPECT_EQ(info.encoder_parameter_count, encoder);
  EXPECT_EQ(info.decoder_parameter_count, decoder);
  ASSERT_GT(encoder, 0);
  ASSERT_GT(decoder, 0);
  const int64_t all = info.parameter_count * 4, enc_bytes = encoder * 4, dec_bytes = decoder * 4;
  const SafetensorsFile io =
      SafetensorsFile::open(data_path("golden/hunyuan_tiled/io.safetensors"));
  const Tensor x = io.load("x"), z = io.load("z");
  const RunPlan encode_before = model.plan_encode(x.shape());
  const RunPlan decode_before = model.plan_decode(z.shape());
  EXPECT_EQ(encode_before.weight_bytes, all - dec_bytes);
  EXPECT_EQ(decode_before.weight_bytes, all - enc_bytes);
  // A first run reads its layers' weights as they run: its peak is at most all of them beside
  // the activations' peak, and here (an encoder's wide layers first) less.
  const int64_t steady = encode_before.weight_bytes + encode_before.peak_activation_bytes +
                         encode_before.scratch_bytes;
  EXPECT_LT(encode_before.estimated_peak_bytes, steady);
  EXPECT_GE(encode_before.estimated_peak_bytes,
            std::max(encode_before.weight_bytes, encode_before.peak_activation_bytes));
  EXPECT_EQ(model.weights_not_yet_resident(true), enc_bytes);
  EXPECT_EQ(model.weights_not_yet_resident(false), dec_bytes);
  // A dry run brings nothing in; a run does.
  model.encode(x);
  EXPECT_EQ(model.weights_not_yet_resident(true), 0);
  EXPECT_EQ(model.weights_not_yet_resident(false), dec_bytes);
  EXPECT_EQ(model.plan_encode(x.shape()).weight_bytes, all - dec_bytes);
  EXPECT_EQ(model.plan_encode(x.shape()).estimated_peak_bytes, steady);  // all resident now
  EXPECT_EQ(model.plan_decode(z.shape()).weight_bytes, all);
  EXPECT_EQ(model.plan_decode(z.shape()).estimated_peak_bytes,
            decode_before.estimated_peak_bytes + enc_bytes);
  model.decode(z);
  EXPECT_EQ(model.weights_not_yet_resident(false), 0);
  EXPECT_EQ(model.plan_encode(x.shape()).weight_bytes, all);
}

}  // namespace
}  // namespace vvae::test
