// The shared tiler against a literal re-implementation of Open-Sora's tiled encode/decode
// (all tiles first, blended in place, cropped, concatenated), on a toy model whose tiles
// disagree in their overlaps (it adds each tile's global mean, as GroupNorm statistics do).
#include <cmath>

#include "core/dry_run.hpp"
#include "models/tiling.hpp"
#include "test_util.hpp"
#include "vvae/error.hpp"

namespace vvae::test {
namespace {

// A (B, C, T, H, W) accessor.
struct V {
  mutable Tensor t;
  float& at(int64_t b, int64_t c, int64_t f, int64_t h, int64_t w) const {
    const Shape& s = t.shape();
    return t.data()[(((b * s[1] + c) * s[2] + f) * s[3] + h) * s[4] + w];
  }
  int64_t d(int i) const { return t.dim(i); }
};

// Toy "encoder" (down = true: f x f pixels and ft frames -> 1, causal frame 0 alone) or
// "decoder" (nearest upsampling; a single latent frame decodes to one frame, as the DC-AE does).
struct Toy {
  int64_t f = 4, ft = 4;
  bool down = true, causal = true;

  int64_t out_frames(int64_t t) const {
    if (down) {
      if (causal) {
        if ((t - 1) % ft != 0) fail("toy: ", t, " frames is not 1 + ", ft, "k");
        return 1 + (t - 1) / ft;
      }
      if (t != 1 && t % ft != 0) fail("toy: ", t, " frames is not a multiple of ", ft);
      return t == 1 ? 1 : t / ft;
    }
    if (causal) return 1 + (t - 1) * ft;
    return t == 1 ? 1 : t * ft;
  }

  Shape shape(const Shape& x) const {
    if (down && (x[3] % f != 0 || x[4] % f != 0)) fail("toy: size not a multiple of ", f);
    const int64_t h = down ? x[3] / f : x[3] * f, w = down ? x[4] / f : x[4] * f;
    return {x[0], 2, out_frames(x[2]), h, w};
  }

  // Source frame of output frame k.
  int64_t source(int64_t k, int64_t t_in) const {
    if (down) return causal ? (k == 0 ? 0 : 1 + (k - 1) * ft) : (t_in == 1 ? 0 : k * ft);
    if (causal) return k == 0 ? 0 : 1 + (k - 1) / ft;
    return t_in == 1 ? 0 : k / ft;
  }

  Tensor run(const Tensor& x) const {
    const V in{x};
    V out{Tensor::empty(shape(x.shape()))};
    for (int64_t b = 0; b < in.d(0); ++b) {
      double mean = 0;
      for (int64_t i = 0; i < x.numel() / in.d(0); ++i)
        mean += x.data()[b * (x.numel() / in.d(0)) + i];
      mean /= static_cast<double>(x.numel() / in.d(0));
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t k = 0; k < out.d(2); ++k)
          for (int64_t h = 0; h < out.d(3); ++h)
            for (int64_t w = 0; w < out.d(4); ++w) {
              const int64_t hs = down ? h * f : h / f, ws = down ? w * f : w / f;
              const float v = in.at(b, c % in.d(1), source(k, in.d(2)), hs, ws);
              out.at(b, c, k, h, w) = (c == 0 ? v : -2 * v) + static_cast<float>(3 * mean);
            }
    }
    return out.t;
  }
};

// --- the reference, step by step as upstream writes it -------------------------------------

Tensor slice(const Tensor& x, int axis, int64_t begin, int64_t end) {
  end = std::min(end, x.dim(axis));
  Shape s = x.shape();
  s[static_cast<size_t>(axis)] = std::max<int64_t>(0, end - begin);
  V out{Tensor::empty(s)};
  const V in{x};
  for (int64_t b = 0; b < s[0]; ++b)
    for (int64_t c = 0; c < s[1]; ++c)
      for (int64_t t = 0; t < s[2]; ++t)
        for (int64_t h = 0; h < s[3]; ++h)
          for (int64_t w = 0; w < s[4]; ++w) {
            int64_t i[5] = {b, c, t, h, w};
            i[axis] += begin;
            out.at(b, c, t, h, w) = in.at(i[0], i[1], i[2], i[3], i[4]);
          }
  return out.t;
}

Tensor concat(const std::vector<Tensor>& parts, int axis) {
  Shape s = parts[0].shape();
  s[static_cast<size_t>(axis)] = 0;
  for (const auto& p : parts) s[static_cast<size_t>(axis)] += p.dim(axis);
  V out{Tensor::empty(s)};
  int64_t offset = 0;
  for (const auto& p : parts) {
    const V in{p};
    for (int64_t b = 0; b < p.dim(0); ++b)
      for (int64_t c = 0; c < p.dim(1); ++c)
        for (int64_t t = 0; t < p.dim(2); ++t)
          for (int64_t h = 0; h < p.dim(3); ++h)
            for (int64_t w = 0; w < p.dim(4); ++w) {
              int64_t i[5] = {b, c, t, h, w};
              i[axis] += offset;
              out.at(i[0], i[1], i[2], i[3], i[4]) = in.at(b, c, t, h, w);
            }
    offset += p.dim(axis);
  }
  return out.t;
}

void blend_ref(const Tensor& a, Tensor& b, int axis, int64_t extent) {
  const int64_t e = std::min({a.dim(axis), b.dim(axis), extent});
  const V va{a}, vb{b};
  for (int64_t y = 0; y < e; ++y)
    for (int64_t i0 = 0; i0 < b.dim(0); ++i0)
      for (int64_t i1 = 0; i1 < b.dim(1); ++i1)
        for (int64_t i2 = 0; i2 < (axis == 2 ? 1 : b.dim(2)); ++i2)
          for (int64_t i3 = 0; i3 < (axis == 3 ? 1 : b.dim(3)); ++i3)
            for (int64_t i4 = 0; i4 < (axis == 4 ? 1 : b.dim(4)); ++i4) {
              int64_t ib[5] = {i0, i1, i2, i3, i4}, ia[5] = {i0, i1, i2, i3, i4};
              ib[axis] = y;
              ia[axis] = a.dim(axis) - e + y;
              const double w = static_cast<double>(y) / static_cast<double>(e);
              float& dst = vb.at(ib[0], ib[1], ib[2], ib[3], ib[4]);
              dst = va.at(ia[0], ia[1], ia[2], ia[3], ia[4]) * static_cast<float>(1 - w) +
                    dst * static_cast<float>(w);
            }
}

Tensor ref_spatial(const Tensor& x, const TilingSpec& s, const Toy& m) {
  const int64_t step = static_cast<int64_t>(static_cast<double>(s.tile) * (1 - s.overlap));
  const int64_t extent = static_cast<int64_t>(static_cast<double>(s.out_tile) * s.overlap);
  const int64_t limit = s.out_tile - extent;
  std::vector<std::vector<Tensor>> rows;
  for (int64_t i = 0; i < x.dim(3); i += step) {
    std::vector<Tensor> row;
    for (int64_t j = 0; j < x.dim(4); j += step)
      row.push_back(m.run(slice(slice(x, 3, i, i + s.tile), 4, j, j + s.tile)));
    rows.push_back(row);
  }
  std::vector<Tensor> result_rows;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<Tensor> result_row;
    for (size_t j = 0; j < rows[i].size(); ++j) {
      Tensor& tile = rows[i][j];
      if (i > 0) blend_ref(rows[i - 1][j], tile, 3, extent);
      if (j > 0) blend_ref(rows[i][j - 1], tile, 4, extent);
      result_row.push_back(slice(slice(tile, 3, 0, limit), 4, 0, limit));
    }
    result_rows.push_back(concat(result_row, 4));
  }
  return concat(result_rows, 3);
}

Tensor ref_temporal(const Tensor& x, const TilingSpec& s, const Toy& m) {
  const int64_t step = static_cast<int64_t>(static_cast<double>(s.tile_frames) * (1 - s.overlap));
  const int64_t extent = static_cast<int64_t>(static_cast<double>(s.out_tile_frames) * s.overlap);
  const int64_t limit = s.out_tile_frames - extent;
  std::vector<Tensor> row;
  for (int64_t i = 0; i < x.dim(2); i += step) {
    Tensor tile = slice(x, 2, i, i + s.tile_frames + (s.causal ? 1 : 0));
    const bool spatial = s.spatial && (tile.dim(3) > s.tile || tile.dim(4) > s.tile);
    tile = spatial ? ref_spatial(tile, s, m) : m.run(tile);
    if (s.causal && i > 0) tile = slice(tile, 2, 1, tile.dim(2));
    row.push_back(tile);
  }
  std::vector<Tensor> result;
  for (size_t i = 0; i < row.size(); ++i) {
    if (i > 0) blend_ref(row[i - 1], row[i], 2, extent);
    result.push_back(slice(row[i], 2, 0, limit + (s.causal && i == 0 ? 1 : 0)));
  }
  return concat(result, 2);
}

Tensor ref_tiled(const Tensor& x, const TilingSpec& s, const Toy& m) {
  if (s.temporal && x.dim(2) > s.tile_frames) return ref_temporal(x, s, m);
  if (s.spatial && (x.dim(3) > s.tile || x.dim(4) > s.tile)) return ref_spatial(x, s, m);
  return m.run(x);
}

Tensor ours(const Tensor& x, const TilingSpec& s, const Toy& m) {
  return run_tiled(
      x, s, [&](const Tensor& t) { return m.run(t); },
      [&](const Shape& sh) { return m.shape(sh); });
}

TilingSpec spec(bool spatial, bool temporal, double overlap, int64_t tile, int64_t out_tile,
                int64_t frames, int64_t out_frames, bool causal) {
  TilingSpec s;
  s.spatial = spatial;
  s.temporal = temporal;
  s.overlap = overlap;
  s.tile = tile;
  s.out_tile = out_tile;
  s.tile_frames = frames;
  s.out_tile_frames = out_frames;
  s.causal = causal;
  return s;
}

TEST(Tiling, SpatialMatchesUpstream) {
  const Toy toy;  // /4 spatially
  for (double ov : {0.25, 0.5}) {
    const TilingSpec s = spec(true, false, ov, 16, 4, 0, 0, true);
    for (const Shape& shape :
         {Shape{1, 3, 1, 40, 40}, Shape{2, 3, 5, 24, 40}, Shape{1, 3, 1, 16, 36}}) {
      const Tensor x = random_tensor(shape, 1);
      const Tensor a = ours(x, s, toy), b = ref_tiled(x, s, toy);
      EXPECT_EQ(a.shape(), toy.shape(shape));
      EXPECT_EQ(max_abs_diff(a, b), 0.0) << to_string(shape) << " overlap " << ov;
      EXPECT_GT(max_abs_diff(a, toy.run(x)), 1e-3);  // tiling does change the result
    }
  }
}

TEST(Tiling, CausalTemporalWithNestedSpatialMatchesUpstream) {
  const Toy toy;  // causal, /4 in time and space
  for (double ov : {0.25, 0.5}) {
    const TilingSpec s = spec(true, true, ov, 16, 4, 16, 4, true);
    for (const Shape& shape :
         {Shape{1, 3, 17, 24, 24}, Shape{2, 3, 25, 16, 20}, Shape{1, 3, 33, 8, 8}}) {
      const Tensor x = random_tensor(shape, 2);
      const Tensor a = ours(x, s, toy), b = ref_tiled(x, s, toy);
      ASSERT_EQ(a.shape(), toy.shape(shape)) << to_string(shape);
      EXPECT_EQ(max_abs_diff(a, b), 0.0) << to_string(shape) << " overlap " << ov;
    }
  }
}

TEST(Tiling, NonCausalTemporalMatchesUpstream) {
  Toy toy;
  toy.causal = false;
  const TilingSpec s = spec(true, true, 0.25, 16, 4, 16, 4, false);
  for (const Shape& shape : {Shape{1, 3, 40, 16, 16}, Shape{1, 3, 20, 20, 24}}) {
    const Tensor x = random_tensor(shape, 3);
    const Tensor a = ours(x, s, toy), b = ref_tiled(x, s, toy);
    ASSERT_EQ(a.shape(), toy.shape(shape));
    EXPECT_EQ(max_abs_diff(a, b), 0.0) << to_string(shape);
  }
}

TEST(Tiling, ShortTailIsMergedOrReproduced) {
  // The DC-AE decode quirk: latent tiles of 8 every 6; 25 latent frames leave a 1-frame tail.
  Toy dec;
  dec.down = false;
  dec.causal = false;
  dec.f = 1;
  TilingSpec s = spec(false, true, 0.25, 0, 0, 8, 32, false);
  const Tensor z = random_tensor({1, 2, 25, 2, 2}, 4);
  // Upstream: 97 frames instead of 100 (refused unless asked for).
  EXPECT_THROW(ours(z, s, dec), Error);
  s.allow_short_tail = true;
  const Tensor compat = ours(z, s, dec);
  ASSERT_EQ(compat.dim(2), 97);
  EXPECT_EQ(max_abs_diff(compat, ref_tiled(z, s, dec)), 0.0);
  // vvae: the tail joins the previous tile, every frame comes back, and the frames before the
  // last tile are upstream's.
  s.allow_short_tail = false;
  s.min_tail_frames = 2;
  const Tensor merged = ours(z, s, dec);
  ASSERT_EQ(merged.dim(2), 100);
  EXPECT_EQ(max_abs_diff(slice(merged, 2, 0, 72), slice(compat, 2, 0, 72)), 0.0);
  // Its last frames are the previous tile's own output, uncropped.
  const Tensor last_tile = dec.run(slice(z, 2, 18, 25));
  EXPECT_EQ(max_abs_diff(slice(merged, 2, 96, 100), slice(last_tile, 2, 24, 28)), 0.0);
  const auto lines = describe_tiling(z.shape(), s, [&](const Shape& sh) { return dec.shape(sh); });
  bool mentions_merge = false;
  for (const auto& l : lines) mentions_merge |= l.find("merged") != std::string::npos;
  EXPECT_TRUE(mentions_merge);
}

TEST(Tiling, MisalignedPlansAreRefused) {
  const Toy toy;
  // step int(16 * 0.7) = 11 px is not a whole number of latents.
  const TilingSpec s = spec(true, false, 0.3, 16, 4, 0, 0, true);
  try {
    ours(random_tensor({1, 3, 1, 48, 48}, 5), s, toy);
    ADD_FAILURE() << "misaligned plan accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--tile-overlap"), std::string::npos) << e.what();
  }
  // Tiles that never advance.
  EXPECT_THROW(
      ours(random_tensor({1, 3, 1, 48, 48}, 5), spec(true, false, 0.99, 16, 4, 0, 0, true), toy),
      Error);
}

TEST(Tiling, DryRunPlansWithoutData) {
  const Toy toy;
  const TilingSpec s = spec(true, true, 0.25, 16, 4, 16, 4, true);
  const Shape shape = {1, 3, 25, 24, 24};
  PlanContext plan;
  const PlanScope dry(plan);
  const Tensor x = Tensor::empty(shape);
  const Tensor y = run_tiled(
      x, s, [&](const Tensor& t) { return Tensor::empty(toy.shape(t.shape())); },
      [&](const Shape& sh) { return toy.shape(sh); });
  EXPECT_EQ(y.shape(), toy.shape(shape));
  EXPECT_EQ(y.data(), nullptr);
}

TEST(Tiling, UntiledWhenTheInputFits) {
  const Toy toy;
  const TilingSpec s = spec(true, true, 0.25, 32, 8, 16, 4, true);
  const Tensor x = random_tensor({1, 3, 9, 32, 32}, 6);
  EXPECT_EQ(max_abs_diff(ours(x, s, toy), toy.run(x)), 0.0);
  const auto lines = describe_tiling(x.shape(), s, [&](const Shape& sh) { return toy.shape(sh); });
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("untiled"), std::string::npos);
}

}  // namespace
}  // namespace vvae::test
