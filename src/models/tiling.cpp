#include "models/tiling.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "core/dry_run.hpp"
#include "core/threads.hpp"
#include "vvae/error.hpp"
#include "vvae/limits.hpp"

namespace vvae {
namespace {

constexpr int kT = 2, kH = 3, kW = 4;  // axes of a (B, C, T, H, W) tensor

constexpr const char* kChangeTiles =
    "change --tile-size, --tile-frames or --tile-overlap, or use --no-tiling";

// Python's int(x): truncation toward zero of the same double product upstream computes.
int64_t truncate(double v) {
  return static_cast<int64_t>(v);
}

// The arithmetic of one tiled axis: where tiles start (input units), how many outputs are
// blended and kept.
struct AxisPlan {
  int64_t tile = 0, step = 0, blend = 0, keep = 0;

  static AxisPlan make(int64_t tile, int64_t out_tile, double overlap, const char* what) {
    AxisPlan p;
    p.tile = tile;
    p.step = truncate(static_cast<double>(tile) * (1.0 - overlap));
    p.blend = truncate(static_cast<double>(out_tile) * overlap);
    p.keep = out_tile - p.blend;
    if (tile < 1 || out_tile < 1) fail(what, " tile size must be positive");
    if (p.step < 1)
      fail(what, " tiles of ", tile, " with overlap ", overlap,
           " never advance; lower the overlap");
    if (p.keep < 1) fail(what, " tiles keep no output with overlap ", overlap);
    return p;
  }
};

struct Span {
  int64_t begin, end;
  int64_t size() const { return end - begin; }
};

// Tiles at range(0, size, step), each [i, min(i + length, size)).
std::vector<Span> spans(int64_t size, int64_t step, int64_t length) {
  std::vector<Span> out;
  for (int64_t i = 0; i < size; i += step) out.push_back({i, std::min(i + length, size)});
  return out;
}

// One temporal tile: its input frames, and what of its output is used.
struct TimeTile {
  Span input;
  int64_t drop = 0;       // leading output frames dropped (causal rule)
  bool keep_all = false;  // a merged last tile keeps every output frame
};

struct TimePlan {
  AxisPlan axis;
  std::vector<TimeTile> tiles;
  bool merged_tail = false;
  int64_t merged_frames = 0;
};

TimePlan plan_time(int64_t frames, const TilingSpec& s) {
  TimePlan p;
  p.axis = AxisPlan::make(s.tile_frames, s.out_tile_frames, s.time_overlap(), "temporal");
  const int64_t length = s.tile_frames + (s.causal ? 1 : 0);
  for (const Span& span : spans(frames, p.axis.step, length))
    p.tiles.push_back({span, (s.causal && span.begin > 0) ? 1 : 0, false});
  if (s.min_tail_frames > 0 && p.tiles.size() > 1 &&
      p.tiles.back().input.size() < s.min_tail_frames) {
    p.merged_tail = true;
    p.merged_frames = p.tiles.back().input.size();
    p.tiles.pop_back();
    p.tiles.back().input.end = frames;
    p.tiles.back().keep_all = true;
  }
  return p;
}

Shape with_dims(Shape s, int64_t t, int64_t h, int64_t w) {
  s[kT] = t;
  s[kH] = h;
  s[kW] = w;
  return s;
}

bool spatial_applies(const Shape& x, const TilingSpec& s) {
  return s.spatial && (x[kH] > s.tile || x[kW] > s.tile);
}

bool temporal_applies(const Shape& x, const TilingSpec& s) {
  return s.temporal && x[kT] > s.tile_frames;
}

Shape tile_output_shape(const Shape& tile, const ShapeRule& shape) {
  try {
    return shape(tile);
  } catch (const Error& e) {
    fail("a tile of shape ", to_string(tile), " cannot run: ", e.what(), " (", kChangeTiles, ")");
  }
}

// --- shapes --------------------------------------------------------------------------------

Shape spatial_shape(const Shape& x, const TilingSpec& s, const ShapeRule& shape) {
  const AxisPlan a = AxisPlan::make(s.tile, s.out_tile, s.overlap, "spatial");
  const auto rows = spans(x[kH], a.step, a.tile), cols = spans(x[kW], a.step, a.tile);
  Shape out;
  int64_t height = 0, width = 0;
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < cols.size(); ++j) {
      const Shape y = tile_output_shape(with_dims(x, x[kT], rows[i].size(), cols[j].size()), shape);
      if (out.empty()) out = y;
      if (y[kT] != out[kT] || y[0] != out[0] || y[1] != out[1])
        fail("spatial tiles of ", to_string(x), " disagree on their output frames or channels");
      if (j == 0) height += std::min(a.keep, y[kH]);
      if (i == 0) width += std::min(a.keep, y[kW]);
    }
  return with_dims(out, out[kT], height, width);
}

Shape untiled_or_spatial_shape(const Shape& x, const TilingSpec& s, const ShapeRule& shape) {
  return spatial_applies(x, s) ? spatial_shape(x, s, shape) : tile_output_shape(x, shape);
}

Shape temporal_shape(const Shape& x, const TilingSpec& s, const ShapeRule& shape) {
  const TimePlan p = plan_time(x[kT], s);
  Shape out;
  int64_t frames = 0;
  for (size_t k = 0; k < p.tiles.size(); ++k) {
    const TimeTile& tile = p.tiles[k];
    Shape y = untiled_or_spatial_shape(with_dims(x, tile.input.size(), x[kH], x[kW]), s, shape);
    const int64_t produced = std::max<int64_t>(0, y[kT] - tile.drop);
    const int64_t keep = tile.keep_all ? produced : p.axis.keep + (s.causal && k == 0 ? 1 : 0);
    if (out.empty()) out = y;
    if (y[kH] != out[kH] || y[kW] != out[kW])
      fail("temporal tiles of ", to_string(x), " disagree on their output size");
    frames += std::min(keep, produced);
  }
  return with_dims(out, frames, out[kH], out[kW]);
}

// --- data movement -------------------------------------------------------------------------

// dst[:, :, dt.., dh.., dw..] = src[:, :, st.., sh.., sw..] over an (nt, nh, nw) box.
void copy_box(const Tensor& src, const std::array<int64_t, 3>& from, Tensor& dst,
              const std::array<int64_t, 3>& to, const std::array<int64_t, 3>& size) {
  if (dry_run_active() || size[0] <= 0 || size[1] <= 0 || size[2] <= 0) return;
  const Shape& a = src.shape();
  const Shape& b = dst.shape();
  const int64_t planes = a[0] * a[1];
  parallel_for(planes * size[0] * size[1], 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t plane = r / (size[0] * size[1]);
      const int64_t t = (r / size[1]) % size[0], h = r % size[1];
      const float* in =
          src.data() + ((plane * a[kT] + from[0] + t) * a[kH] + from[1] + h) * a[kW] + from[2];
      float* out = dst.data() + ((plane * b[kT] + to[0] + t) * b[kH] + to[1] + h) * b[kW] + to[2];
      std::memcpy(out, in, static_cast<size_t>(size[2]) * sizeof(float));
    }
  });
}

// Frames [begin, end) of a (B, C, T, H, W) tensor, copied.
Tensor frames_of(const Tensor& x, int64_t begin, int64_t end) {
  Tensor y = Tensor::empty(with_dims(x.shape(), end - begin, x.dim(kH), x.dim(kW)));
  copy_box(x, {begin, 0, 0}, y, {0, 0, 0}, {end - begin, x.dim(kH), x.dim(kW)});
  return y;
}

Tensor crop(const Tensor& x, const Span& t, const Span& h, const Span& w) {
  Tensor y = Tensor::empty(with_dims(x.shape(), t.size(), h.size(), w.size()));
  copy_box(x, {t.begin, h.begin, w.begin}, y, {0, 0, 0}, {t.size(), h.size(), w.size()});
  return y;
}

// Frames `span` of the input through `read`, checked: a source that gives the wrong frames would
// otherwise be blended into a wrong clip.
Tensor read_frames(const FrameSource& read, const Shape& x, const Span& span) {
  Tensor part = read(span.begin, span.end);
  const Shape want = with_dims(x, span.size(), x[kH], x[kW]);
  if (part.shape() != want)
    fail("internal: frames [", span.begin, ", ", span.end, ") were read as ",
         to_string(part.shape()), ", not ", to_string(want));
  return part;
}

// Upstream's blend_v / blend_h / blend_t: the first e outputs of b along `axis` fade in from the
// last e of a, in place, with e = min(a, b, extent) along that axis.
void blend(const Tensor& a, Tensor& b, int axis, int64_t extent) {
  const int64_t e = std::min({a.dim(axis), b.dim(axis), extent});
  if (e <= 0 || dry_run_active()) return;
  for (int d = 0; d < 5; ++d)
    if (d != axis && a.dim(d) != b.dim(d))
      fail("cannot blend tiles ", to_string(a.shape()), " and ", to_string(b.shape()));
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= b.dim(d);
  for (int d = axis + 1; d < 5; ++d) inner *= b.dim(d);
  const int64_t na = a.dim(axis), nb = b.dim(axis);
  parallel_for(outer * e, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r / e, y = r % e;
      const double w = static_cast<double>(y) / static_cast<double>(e);
      const float keep_a = static_cast<float>(1.0 - w), keep_b = static_cast<float>(w);
      const float* pa = a.data() + (o * na + na - e + y) * inner;
      float* pb = b.data() + (o * nb + y) * inner;
      for (int64_t i = 0; i < inner; ++i) pb[i] = pa[i] * keep_a + pb[i] * keep_b;
    }
  });
}

// --- execution -----------------------------------------------------------------------------

Tensor run_checked(const TileRunner& run, const Tensor& tile, const ShapeRule& shape) {
  const Shape expected = tile_output_shape(tile.shape(), shape);
  Tensor y = run(tile);
  if (y.shape() != expected)
    fail("tile output ", to_string(y.shape()), " differs from the expected ", to_string(expected));
  return y;
}

Tensor run_spatial(const Tensor& x, const TilingSpec& s, const TileRunner& run,
                   const ShapeRule& shape) {
  const AxisPlan a = AxisPlan::make(s.tile, s.out_tile, s.overlap, "spatial");
  const auto rows = spans(x.dim(kH), a.step, a.tile), cols = spans(x.dim(kW), a.step, a.tile);
  Tensor out = Tensor::empty(spatial_shape(x.shape(), s, shape));
  const Span all_frames{0, x.dim(kT)};
  std::vector<Tensor> above;  // the previous row of blended tiles
  int64_t out_h = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<Tensor> row;
    int64_t out_w = 0;
    for (size_t j = 0; j < cols.size(); ++j) {
      Tensor tile = run_checked(run, crop(x, all_frames, rows[i], cols[j]), shape);
      if (i > 0) blend(above[j], tile, kH, a.blend);
      if (j > 0) blend(row[j - 1], tile, kW, a.blend);
      const int64_t kh = std::min(a.keep, tile.dim(kH)), kw = std::min(a.keep, tile.dim(kW));
      copy_box(tile, {0, 0, 0}, out, {0, out_h, out_w}, {tile.dim(kT), kh, kw});
      out_w += kw;
      row.push_back(std::move(tile));
    }
    out_h += std::min(a.keep, row.front().dim(kH));
    above = std::move(row);
  }
  return out;
}

Tensor run_untiled_or_spatial(const Tensor& x, const TilingSpec& s, const TileRunner& run,
                              const ShapeRule& shape) {
  return spatial_applies(x.shape(), s) ? run_spatial(x, s, run, shape) : run_checked(run, x, shape);
}

// Each temporal tile reads its frames when it runs and hands on the frames it finishes: a tile's
// kept frames are final once it is blended with the previous tile (the next tile blends into
// its own first frames, from the previous tile's discarded tail).
void run_temporal(const Shape& x, const FrameSource& read, const TilingSpec& s,
                  const TileRunner& run, const ShapeRule& shape, const FrameSink& write) {
  const TimePlan p = plan_time(x[kT], s);
  std::optional<Tensor> previous;
  for (size_t k = 0; k < p.tiles.size(); ++k) {
    const TimeTile& t = p.tiles[k];
    Tensor y = run_untiled_or_spatial(read_frames(read, x, t.input), s, run, shape);
    if (t.drop > 0) y = frames_of(y, std::min(t.drop, y.dim(kT)), y.dim(kT));
    if (previous) blend(*previous, y, kT, p.axis.blend);
    const int64_t keep = t.keep_all ? y.dim(kT) : p.axis.keep + (s.causal && k == 0 ? 1 : 0);
    write(y, std::min(keep, y.dim(kT)));
    // The next tile blends with this one's tail only: drop the reference before it runs when
    // nothing is blended.
    if (p.axis.blend > 0)
      previous = std::move(y);
    else
      previous.reset();
  }
}

void check_input(const Shape& x) {
  if (x.size() != 5) fail("tiling needs a (B, C, T, H, W) tensor, got ", to_string(x));
}

int64_t ceil_div(int64_t a, int64_t b) {
  return a / b + (a % b != 0 ? 1 : 0);
}

// Counts the tiles a run would take, without enumerating them, and refuses more than
// limits::kMaxTiles before any loop over them.
void check_tile_count(const Shape& x, const TilingSpec& s) {
  int64_t tiles = 1;
  Shape spatial_input = x;
  if (temporal_applies(x, s)) {
    const AxisPlan t =
        AxisPlan::make(s.tile_frames, s.out_tile_frames, s.time_overlap(), "temporal");
    tiles = ceil_div(x[kT], t.step);
    spatial_input[kT] = std::min(x[kT], s.tile_frames + (s.causal ? 1 : 0));
  }
  if (spatial_applies(spatial_input, s)) {
    const AxisPlan a = AxisPlan::make(s.tile, s.out_tile, s.overlap, "spatial");
    tiles = limits::checked_mul(
        tiles, limits::checked_mul(ceil_div(x[kH], a.step), ceil_div(x[kW], a.step), "tiles"),
        "tiles");
  }
  if (tiles > limits::kMaxTiles)
    fail("tiling a ", x[kT], "x", x[kH], "x", x[kW], " (T x H x W) input takes ", tiles,
         " tiles; vvae's limit is ", limits::kMaxTiles, " (", kChangeTiles, ")");
}

}  // namespace

TilingPair tiling_pair(const TilingSettings& t) {
  TilingPair p;
  for (TilingSpec* s : {&p.encode, &p.decode}) {
    s->spatial = t.spatial;
    s->temporal = t.temporal;
    s->overlap = t.overlap;
    s->causal = t.causal;
  }
  p.encode.tile = p.decode.out_tile = t.tile;
  p.encode.out_tile = p.decode.tile = t.latent_tile;
  p.encode.tile_frames = p.decode.out_tile_frames = t.tile_frames;
  p.encode.out_tile_frames = p.decode.tile_frames = t.latent_frames;
  return p;
}

Shape tiled_output_shape(const Shape& x, const TilingSpec& spec, const ShapeRule& shape) {
  check_input(x);
  check_tile_count(x, spec);
  const Shape untiled = shape(x);
  if (!temporal_applies(x, spec) && !spatial_applies(x, spec)) return untiled;
  const Shape tiled =
      temporal_applies(x, spec) ? temporal_shape(x, spec, shape) : spatial_shape(x, spec, shape);
  const bool short_tail = spec.allow_short_tail && tiled[kT] < untiled[kT] &&
                          tiled[kH] == untiled[kH] && tiled[kW] == untiled[kW];
  if (tiled != untiled && !short_tail) {
    std::string tiles;
    if (temporal_applies(x, spec)) tiles = cat(spec.tile_frames, "-frame");
    if (spatial_applies(x, spec) || (temporal_applies(x, spec) && spec.spatial))
      tiles += cat(tiles.empty() ? "" : " and ", spec.tile, "-unit spatial");
    fail("tiling a ", x[kT], "x", x[kH], "x", x[kW], " (T x H x W) input with ", tiles,
         " tiles at overlap ", spec.overlap, " would give ", tiled[kT], "x", tiled[kH], "x",
         tiled[kW], " instead of ", untiled[kT], "x", untiled[kH], "x", untiled[kW],
         " (upstream returns that silently): the tile step int(tile * (1 - overlap)) must equal "
         "the kept output int(tile_out - tile_out * overlap) times the compression; ",
         kChangeTiles);
  }
  return tiled;
}

void run_tiled_streamed(const Shape& x, const FrameSource& read, const TilingSpec& spec,
                        const TileRunner& run, const ShapeRule& shape, const FrameSink& write) {
  check_input(x);
  tiled_output_shape(x, spec, shape);  // refuses plans that do not line up
  if (temporal_applies(x, spec)) return run_temporal(x, read, spec, run, shape, write);
  Tensor y = run_untiled_or_spatial(read_frames(read, x, {0, x[kT]}), spec, run, shape);
  const int64_t frames = y.dim(kT);
  write(y, frames);
}

Tensor run_tiled(const Tensor& x, const TilingSpec& spec, const TileRunner& run,
                 const ShapeRule& shape) {
  Tensor out;
  run_tiled_streamed(x.shape(), whole_tensor_source(x), spec, run, shape,
                     assemble_frames(out, tiled_output_shape(x.shape(), spec, shape)));
  return out;
}

void paste_frames(const Tensor& part, int64_t frames, Tensor& dst, int64_t at) {
  if (frames < 0 || at < 0 || at + frames > dst.dim(kT) || frames > part.dim(kT) ||
      part.dim(kH) != dst.dim(kH) || part.dim(kW) != dst.dim(kW))
    fail("internal: cannot paste ", frames, " frames of ", to_string(part.shape()), " into ",
         to_string(dst.shape()), " at frame ", at);
  copy_box(part, {0, 0, 0}, dst, {at, 0, 0}, {frames, part.dim(kH), part.dim(kW)});
}

FrameSink assemble_frames(Tensor& out, const Shape& shape) {
  auto done = std::make_shared<int64_t>(0);
  return [&out, shape, done](const Tensor& part, int64_t frames) {
    if (*done == 0 && frames == shape[kT] && part.shape() == shape) {
      out = part;  // the whole output at once (an untiled run's): taken as it is
    } else {
      // Allocated with the first part, so that an untiled run never holds two outputs.
      if (!out.defined()) out = Tensor::empty(shape);
      paste_frames(part, frames, out, *done);
    }
    *done += frames;
  };
}

FrameSource whole_tensor_source(const Tensor& x) {
  return [x](int64_t begin, int64_t end) {
    if (begin == 0 && end == x.dim(kT)) return x;
    return frames_of(x, begin, end);
  };
}

std::vector<int64_t> tile_frame_counts(const Shape& x, const TilingSpec& s) {
  check_input(x);
  check_tile_count(x, s);
  const auto spatial_tiles = [&](const Shape& in) -> size_t {
    if (!spatial_applies(in, s)) return 1;
    const AxisPlan a = AxisPlan::make(s.tile, s.out_tile, s.overlap, "spatial");
    return spans(in[kH], a.step, a.tile).size() * spans(in[kW], a.step, a.tile).size();
  };
  std::vector<int64_t> counts;
  if (temporal_applies(x, s)) {
    for (const TimeTile& t : plan_time(x[kT], s).tiles)
      counts.insert(counts.end(), spatial_tiles(with_dims(x, t.input.size(), x[kH], x[kW])),
                    t.input.size());
  } else {
    counts.assign(spatial_tiles(x), x[kT]);
  }
  return counts;
}

std::vector<std::string> describe_tiling(const Shape& x, const TilingSpec& s,
                                         const ShapeRule& shape) {
  check_input(x);
  std::vector<std::string> lines;
  const Shape out = tiled_output_shape(x, s, shape);
  const auto spatial_line = [&](const Shape& in) {
    const AxisPlan a = AxisPlan::make(s.tile, s.out_tile, s.overlap, "spatial");
    const size_t rows = spans(in[kH], a.step, a.tile).size(),
                 cols = spans(in[kW], a.step, a.tile).size();
    return cat("spatial tiles: ", rows, " x ", cols, " of ", a.tile, " every ", a.step,
               " (outputs blend over ", a.blend, ", keep ", a.keep, ")");
  };
  if (temporal_applies(x, s)) {
    const TimePlan p = plan_time(x[kT], s);
    std::string starts;
    for (const TimeTile& t : p.tiles)
      starts += cat(starts.empty() ? "" : ", ", "[", t.input.begin, ", ", t.input.end, ")");
    lines.push_back(cat("temporal tiles: ", p.tiles.size(), " of ",
                        s.tile_frames + (s.causal ? 1 : 0), " frames every ", p.axis.step, ": ",
                        starts, " (blend ", p.axis.blend, ", keep ", p.axis.keep,
                        s.causal ? "; causal: later tiles drop their first output" : "", ")"));
    if (p.merged_tail)
      lines.push_back(cat("the last temporal tile (", p.merged_frames,
                          p.merged_frames == 1 ? " input frame" : " input frames",
                          ") is merged into the previous one, which keeps all its output"));
    else if (s.temporal && out[kT] < shape(x)[kT])
      lines.push_back(
          cat("upstream short tail: ", out[kT], " output frames instead of ", shape(x)[kT]));
    const Shape first = with_dims(x, p.tiles.front().input.size(), x[kH], x[kW]);
    if (spatial_applies(first, s)) lines.push_back("in each temporal tile, " + spatial_line(first));
  } else if (spatial_applies(x, s)) {
    lines.push_back(spatial_line(x));
  } else {
    lines.push_back(s.spatial || s.temporal ? "untiled: the input fits in one tile"
                                            : "untiled: tiling is off");
  }
  return lines;
}

}  // namespace vvae
