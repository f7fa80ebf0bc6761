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

// What every cap test checks, in one direction (fit_encode / fit_decode of `input`): a cap
// above the configured plan keeps it; at 60% of its activations it tiles within the cap, with
// the configured output shape, the plan plan_encode / plan_decode makes of that tiling, and no
// tiling of fewer tiles fitting; far below, it refuses.
void check_cap(const Model& model, const Shape& input, bool encode) {
  const auto fit = [&](int64_t cap) {
    return encode ? model.fit_encode(input, cap) : model.fit_decode(input, cap);
  };
  const auto plan_with = [&](const std::optional<TilingOptions>& t) {
    return encode ? model.plan_encode(input, t) : model.plan_decode(input, t);
  };
  const RunPlan configured = plan_with(std::nullopt);
  const int64_t base = model.baseline_bytes() + runtime_allowance_bytes();
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

// The encode tiling fitted at 60% of the configured plan, given per call, gives the bits the
// same tiling given at load gives; it is a tiled run, close to the untiled one but not the same.
// Returns the fitted plan.
FittedPlan check_fitted_encode_runs_as_at_load(const Model& model, const std::string& golden,
                                               const Shape& x) {
  const FittedPlan fit =
      model.fit_encode(x, model.baseline_bytes() + runtime_allowance_bytes() +
                              model.plan_encode(x).estimated_peak_bytes * 6 / 10);
  EXPECT_TRUE(fit.tiling) << fit.summary;
  if (!fit.tiling) return fit;
  const Tensor clip = random_tensor(x, 7);
  EncodeOptions per_call;
  per_call.tiling = fit.tiling;
  LoadOptions o;
  o.model = data_path("golden/" + golden);
  o.tiling = *fit.tiling;
  const Model at_load = Model::load(o);
  const Tensor tiled = model.encode(clip, per_call).z;
  EXPECT_TRUE(close(tiled, at_load.encode(clip).z, 0.0));
  const double err = relative_error(tiled, model.encode(clip).z);
  EXPECT_GT(err, 0.0);
  EXPECT_LT(err, 0.5);
  return fit;
}

TEST(MemoryCap, HunyuanEncodeTilesToFitAndRunsAsThatTiling) {
  const Model model = load("hunyuan_tiled", true);
  const Shape x = {1, 3, 25, 96, 96};
  check_cap(model, x, /*encode=*/true);

  check_fitted_encode_runs_as_at_load(model, "hunyuan_tiled", x);
}

TEST(MemoryCap, DcaeDecodeTilesToFit) {
  const Model model = load("dcae_tiled", true);
  const Shape z = {1, model.info().latent_channels, 8, 12, 12};
  check_cap(model, z, /*encode=*/false);
}

// The 2D AE codes frame by frame (the smallest frame batch) and has no tiles upstream: under a
// cap it cuts vvae's own spatial tiles inside each frame, says they are vvae's, and runs as the
// same --tile-size given at load.
TEST(MemoryCap, Ae2dTilesEachFrameToFitWithVvaesOwnTiles) {
  const Model model = load("ae2d_small", false);
  const Shape x = {1, 3, 2, 128, 128};
  check_cap(model, x, /*encode=*/true);
  const Shape z = model.encoded_shape(x);
  check_cap(model, z, /*encode=*/false);

  const FittedPlan fit = check_fitted_encode_runs_as_at_load(model, "ae2d_small", x);
  ASSERT_TRUE(fit.tiling);
  EXPECT_FALSE(fit.tiling->tile_frames);  // no temporal tiles: frames are coded one by one
  EXPECT_NE(fit.summary.find("vvae's own tiles"), std::string::npos) << fit.summary;
  // The tiles are cut inside each frame, still coded one by one: a longer clip's streamed plan
  // grows by what an untiled one grows by (the latent, held whole), not by a clip per tile.
  const auto growth = [&](const std::optional<TilingOptions>& t, bool encode) {
    const auto peak = [&](int64_t frames) {
      return encode ? model.plan_encode({1, 3, frames, 128, 128}, t, ClipIo::kStreamed)
                          .estimated_peak_bytes
                    : model.plan_decode({1, z[1], frames, z[3], z[4]}, t, ClipIo::kStreamed)
                          .estimated_peak_bytes;
    };
    return peak(16) - peak(1);
  };
  for (const bool encode : {true, false}) {
    const int64_t untiled = growth(std::nullopt, encode);
    EXPECT_GT(untiled, 0);
    EXPECT_LE(growth(fit.tiling, encode), untiled * 11 / 10) << (encode ? "encode" : "decode");
  }
}

TEST(MemoryCap, Ae2dHasNoTemporalTilesAndItsTilesAreOffByDefault) {
  const Model model = load("ae2d_small", false);
  const Shape frame = {1, 3, 1, 512, 512};  // larger than vvae's default tile of 256 px
  EXPECT_EQ(model.plan_encode(frame).tiles, 1);
  TilingOptions tiles;
  tiles.tile_size = 256;
  EXPECT_EQ(model.plan_encode(frame, tiles).tiles, 9);  // steps of 192 px
  LoadOptions o;
  o.model = data_path("golden/ae2d_small");
  o.tiling.tile_frames = 4;
  const std::string no = error_of([&] { Model::load(o); });
  EXPECT_NE(no.find("codes frame by frame and has no temporal tiles"), std::string::npos) << no;
  o.tiling = {};
  o.tiling.tile_size = 7;  // not a multiple of the 2D AE's ratio
  EXPECT_NE(error_of([&] { Model::load(o); }).find("must be a multiple of"), std::string::npos);
  EXPECT_NE(error_of([&] {
              model.fit_encode({1, 3, 2, 64, 64}, 0);
            }).find("positive"),
            std::string::npos);
}

}  // namespace
}  // namespace vvae::test
