#pragma once
// Open-Sora's tiled encode/decode, written once for every family (HunyuanVideo's
// AutoencoderKLCausal3D and the Video DC-AE use the same scheme with small differences that
// TilingSpec spells out).
//
// Dispatch (as upstream): temporal tiling when enabled and T > tile_frames; else spatial tiling
// when enabled and H or W > tile; else one untiled run. Inside a temporal tile, spatial tiling
// applies when enabled and the tile is larger than `tile`.
//
// Spatial: tiles start every step = int(tile * (1 - overlap)) input units along H and W and are
// cut [i, i + tile) (trailing tiles are smaller). Row by row, left to right, each tile output is
// blended in place with the (already blended) tile above (blend_v), then with the one to its left
// (blend_h), over e = min(a, b, int(out_tile * overlap)) outputs:
//     b[y] = a[-e + y] * (1 - y / e) + b[y] * (y / e),
// and cropped to [0, out_tile - blend).
// Temporal: the same along T with step = int(tile_frames * (1 - overlap)), blend over
// int(out_tile_frames * overlap) frames, crop to out_tile_frames - blend; see `causal` and
// `min_tail_frames` for the family rules.
//
// Only the tiles a later blend still needs are kept, so memory is bounded by a row of spatial
// tiles and two temporal tiles however large the clip. Plans whose tiles do not line up (upstream
// then silently returns the wrong size) are refused with an explanation.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vvae/tensor.hpp"

namespace vvae {

// The tiling of one direction (encode or decode) of a model, in its input's units.
struct TilingSpec {
  bool spatial = false;
  bool temporal = false;
  double overlap = 0.25;  // tile_overlap_factor, of spatial tiles
  // Of temporal tiles when set; unset, `overlap` (upstream's one factor serves both). A family
  // that codes frame by frame cuts one-frame temporal tiles, which cannot overlap, around its
  // spatial ones.
  std::optional<double> temporal_overlap{};
  double time_overlap() const { return temporal_overlap.value_or(overlap); }
  int64_t tile = 0;             // spatial tile, input units (pixels to encode, latents to decode)
  int64_t out_tile = 0;         // output size of a full spatial tile
  int64_t tile_frames = 0;      // temporal tile, input frames (also the dispatch threshold)
  int64_t out_tile_frames = 0;  // output frames of a full temporal tile
  // HunyuanVideo's causal rule: tiles take tile_frames + 1 input frames, every tile after the
  // first drops its first output frame, and the first tile keeps one more output frame.
  bool causal = false;
  // A last temporal tile with fewer input frames than this is merged into the previous tile,
  // which then keeps all its output frames (vvae's fix for the DC-AE tail; 0 = off).
  int64_t min_tail_frames = 0;
  // Accept upstream's short temporal output (a DC-AE last tile of one latent frame decodes to one
  // frame) instead of refusing the plan as misaligned: the --dcae-short-tail-compat mode, used
  // with min_tail_frames = 0.
  bool allow_short_tail = false;
};

// Both directions' tilings from one setting, as upstream derives them: encoding cuts tiles of
// `tile` pixels and `tile_frames` frames, whose outputs are `latent_tile` latents and
// `latent_frames` latent frames; decoding cuts tiles of those and outputs the pixel sizes.
struct TilingSettings {
  bool spatial = false;
  bool temporal = false;
  double overlap = 0.25;
  int64_t tile = 0, latent_tile = 0;
  int64_t tile_frames = 0, latent_frames = 0;
  bool causal = false;
};
struct TilingPair {
  TilingSpec encode, decode;
};
TilingPair tiling_pair(const TilingSettings& settings);

// Runs the model untiled on one tile: (B, C, t, h, w) -> (B, C', t', h', w'), channels-first.
using TileRunner = std::function<Tensor(const Tensor& tile)>;
// The untiled output shape for an input shape (throws Error on an invalid input).
using ShapeRule = std::function<Shape(const Shape& input)>;

// Frames [begin, end) of the input (B, C, T, H, W), as (B, C, end - begin, H, W). A tiled run
// asks in order: each span begins at or after the previous one's begin (spans of neighbouring
// temporal tiles overlap), so a source reading a video needs only a window of frames.
using FrameSource = std::function<Tensor(int64_t begin, int64_t end)>;
// The output's next finished frames: the first `frames` frames of `part` (B, C', t, H', W'),
// continuing the frames handed on before. `part` may be shared: a sink copies what it keeps.
using FrameSink = std::function<void(const Tensor& part, int64_t frames)>;

// Runs `run` over the tiles of an input of shape x, reading its frames from `read` as the tiles
// need them and handing the output to `write` as it is finished (a temporal tile at a time;
// untiled and spatially tiled runs hand on the whole output once). Only the tiles a later blend
// needs are kept, so memory does not grow with the clip's length under temporal tiling.
void run_tiled_streamed(const Shape& x, const FrameSource& read, const TilingSpec& spec,
                        const TileRunner& run, const ShapeRule& shape, const FrameSink& write);

// Runs `run` over the tiles of x (B, C, T, H, W) and assembles the blended output.
Tensor run_tiled(const Tensor& x, const TilingSpec& spec, const TileRunner& run,
                 const ShapeRule& shape);

// dst[:, :, at : at + frames] = part[:, :, :frames] (the same B, C, H and W).
void paste_frames(const Tensor& part, int64_t frames, Tensor& dst, int64_t at);

// A sink that assembles the output, of `shape`, into `out` (which must outlive it): the whole
// output handed on at once is taken as it is, parts are pasted in order.
FrameSink assemble_frames(Tensor& out, const Shape& shape);

// A source over a tensor in memory (the whole of it shared, parts copied).
FrameSource whole_tensor_source(const Tensor& x);

// The shape run_tiled returns; throws Error when the plan would not line up.
Shape tiled_output_shape(const Shape& x, const TilingSpec& spec, const ShapeRule& shape);

// The input frame count of every tile run_tiled runs, in the order it runs them (one entry for
// an untiled run): what a progress report counts.
std::vector<int64_t> tile_frame_counts(const Shape& x, const TilingSpec& spec);

// One line per fact: which tiling runs, tile counts, sizes, steps, blends.
std::vector<std::string> describe_tiling(const Shape& x, const TilingSpec& spec,
                                         const ShapeRule& shape);

}  // namespace vvae
