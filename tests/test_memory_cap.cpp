// A memory cap picks the tiling (Model::fit_encode / fit_decode): the configured plan while it
// fits, else the fitting tiling with the fewest tiles, which then runs exactly as the same tiling
// given at load; below anything, a refusal that names the smallest cap that would do.
#include <string>

#include "test_util.hpp"
#include "vvae/memory.hpp"
#include "vvae/model.hpp"

namespace vvae::test {
namespace {

Model load(const std::string& golden, bool untiled) {
  LoadOptions o;
  o.model = data_path("golden/" + golden);
  o.tiling.disable = untiled;
  return Model::load(o);
}

// What every cap test checks, in one direction: `plan(cap)` at a cap above the configured
// plan keeps it; at 60% of its activations it tiles within the cap, with the configured output
// shape, the plan plan_encode / plan_decode makes of that tiling, and no tiling of fewer tiles
// fitting; far below, it refuses.
template <typename Fit, typename PlanWith>
void check_cap(const Model& model, Fit fit, PlanWith plan_with) {
  const RunPlan configured = plan_with(std::nullopt);
  const int64_t base = model.baseline_bytes() + kRuntimeAllowanceBytes;
  EXPECT_GT(base, 0);
  const FittedPlan kept = fit(base + configured.estimated_peak_bytes + 1);
  EXPECT_FALSE(kept.tiling.has_value()) << kept.summary;
  EXPECT_NE(kept.summary.find("the configured plan fits"), std::string::npos) << kept.summary;

  const int64_t cap = base + configured.weight_bytes + configured.peak_activation_bytes * 6 / 10;
  const FittedPlan tiled = fit(cap);
  ASSERT_TRUE(tiled.tiling.has_value()) << tiled.summary;
  EXPECT_NE(tiled.summary.find("running with"), std::string::npos) << tiled.summary;
  EXPECT_LE(base + tiled.plan.estimated_peak_bytes, cap);
  EXPECT_GT(tiled.plan.tiles, configured.tiles);
  EXPECT_EQ(tiled.plan.output, configured.output);
  const RunPlan again = plan_with(tiled.tiling);
  EXPECT_EQ(again.estimated_peak_bytes, tiled.plan.estimated_peak_bytes);
  EXPECT_EQ(again.tiles, tiled.plan.tiles);
  // Fewest tiles: the same spatial tiles without temporal tiles, fewer tiles, do not fit.
  if (tiled.tiling->tile_frames) {
    TilingOptions longer = *tiled.tiling;
    longer.tile_frames.reset();
    longer.no_temporal = true;
    const RunPlan p = plan_with(longer);
    if (p.tiles < tiled.plan.tiles) {
      EXPECT_GT(base + p.estimated_peak_bytes, cap);
    }
  }

  const std::string no = error_of([&] { fit(int64_t{1} << 20); });
  EXPECT_NE(no.find("raise the cap to at least"), std::string::npos) << no;
}

TEST(MemoryCap, HunyuanEncodeTilesToFitAndRunsAsThatTiling) {
  const Model model = load("hunyuan_tiled", true);
  const Shape x = {1, 3, 25, 96, 96};
  check_cap(
      model, [&](int64_t cap) { return model.fit_encode(x, cap); },
      [&](const std::optional<TilingOptions>& t) { return model.plan_encode(x, t); });

  // The fitted tiling per call gives the bits the same tiling gives at load.
  const Tensor clip = random_tensor(x, 7);
  const FittedPlan fit =
      model.fit_encode(x, model.baseline_bytes() + kRuntimeAllowanceBytes +
                              model.plan_encode(x).estimated_peak_bytes * 6 / 10);
  ASSERT_TRUE(fit.tiling);
  EncodeOptions per_call;
  per_call.tiling = fit.tiling;
  LoadOptions o;
  o.model = data_path("golden/hunyuan_tiled");
  o.tiling = *fit.tiling;
  const Model at_load = Model::load(o);
  EXPECT_TRUE(close(model.encode(clip, per_call).z, at_load.encode(clip).z, 0.0));
  // And it is a tiled run, close to the untiled one but not the same.
  const double err = relative_error(model.encode(clip, per_call).z, model.encode(clip).z);
  EXPECT_GT(err, 0.0);
  EXPECT_LT(err, 0.5);
}

TEST(MemoryCap, DcaeDecodeTilesToFit) {
  const Model model = load("dcae_tiled", true);
  const Shape z = {1, model.info().latent_channels, 8, 12, 12};
  check_cap(
      model, [&](int64_t cap) { return model.fit_decode(z, cap); },
      [&](const std::optional<TilingOptions>& t) { return model.plan_decode(z, t); });
}

TEST(MemoryCap, AFamilyWithoutTilesKeepsItsPlanOrRefuses) {
  const Model model = load("ae2d_small", false);
  const Shape x = {1, 3, 2, 64, 64};
  const RunPlan plan = model.plan_encode(x);
  EXPECT_FALSE(model
                   .fit_encode(x, model.baseline_bytes() + kRuntimeAllowanceBytes +
                                      plan.estimated_peak_bytes + 1)
                   .tiling);
  const std::string no = error_of([&] { model.fit_encode(x, model.baseline_bytes()); });
  EXPECT_NE(no.find("family has no tiles"), std::string::npos) << no;
  EXPECT_NE(error_of([&] { model.fit_encode(x, 0); }).find("positive"), std::string::npos);
}

}  // namespace
}  // namespace vvae::test
