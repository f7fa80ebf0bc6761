#include "ops/winograd.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <vector>

#include "core/cpu.hpp"
#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "core/threads.hpp"
#include "ops/gemm.hpp"
#include "ops/winograd_kernels.hpp"
#include "vvae/error.hpp"

namespace vvae {

namespace winograd {
extern const Kernels kernels_sse41, kernels_avx2, kernels_avx512;

const Kernels& kernels(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return kernels_avx512;
    case Isa::kAvx2:
      return kernels_avx2;
    case Isa::kSse41:
      break;
  }
  return kernels_sse41;
}
}  // namespace winograd

using winograd::kAlpha;
using winograd::kPoints;
using winograd::kTile;

int64_t WinogradAxis::out() const {
  return extent() - kernel + 1;
}

namespace {

constexpr int64_t kFilterBlock = 32;  // output channels per packed filter block (GEMM m)
constexpr int64_t kStridePad = 16;    // floats: one cache line

// How the products are cut, from the shape and the instruction set alone (so results do not
// depend on the thread count).
//  - tiles per block (GEMM n): every block streams all transformed filters once per output
//    frame, 2 / tiles bytes per FLOP, from the last-level cache for small layers but from memory
//    for wide ones (36 x 512 x 512 floats per temporal tap: 38 MB), which take 64 tiles.
//  - input channels per product call (chunk): a call sweeps its block with the same filter rows,
//    32 x chunk floats per temporal tap. At 64 channels and 3 taps they stay in the 32 KiB L1;
//    one core's products then ran at 92-94 % of its FMA peak on a Zen 3, against 74-84 % in one
//    call over 256 or 512 channels and 63-74 % in chunks of 128 or 256 (bench_ops
//    BM_WinogradProductsChunked). With the filters in L1 a block of 64 tiles beat 32 for small
//    layers too (a 3x3x3 128-channel layer at 8 x 128^2: 168-172 ms against 175-209). AVX-512
//    keeps the blocking it was measured with: one call over all channels, 32 tiles for small
//    layers.
struct Blocking {
  int64_t tiles = 0, chunk = 0;
};
Blocking blocking(Isa isa, int64_t cin, int64_t filter_bytes) {
  constexpr int64_t kChunk = 64;
  const bool wide = filter_bytes > (int64_t{8} << 20);
  if (isa == Isa::kAvx512) return {wide ? 64 : 32, cin};
  return {64, std::min(cin, kChunk)};
}

struct Problem {
  const float* x = nullptr;
  float* dst = nullptr;
  const float* bias = nullptr;
  const float* filters = nullptr;  // U[tap][point][block][C_in][kFilterBlock]
  const float* zeros = nullptr;    // C_in zeros: the patch rows of the zero padding
  WinogradAxis t, h, w;
  int64_t n = 0, cin = 0, cout = 0, taps = 1;
  int64_t in_t = 1, in_h = 0, in_w = 0, out_t = 1, out_h = 0, out_w = 0;
  int64_t tiles_y = 0, tiles_x = 0, tiles = 0;  // tiles = n * tiles_y * tiles_x
  int64_t block = 0, blocks = 0;
  int64_t filter_blocks = 0, cout_padded = 0;
  int64_t chunk = 0;  // input channels per product call (Blocking)
  bool accumulate = false;
  const winograd::Kernels* kernels = nullptr;

  // Consecutive points lie a cache line more than a whole number of rows apart: at a stride of
  // a power of two the 36 rows a transform reads or writes would fall into one cache set.
  int64_t point_stride_v() const { return block * cin + kStridePad; }          // V[p][tile][C_in]
  int64_t point_stride_m() const { return block * cout_padded + kStridePad; }  // M[p][tile][C_out]
  int64_t point_stride_u() const { return filter_blocks * cin * kFilterBlock + kStridePad; }
  const float* filter(int64_t tap, int64_t point, int64_t fb) const {
    return filters + (tap * kPoints + point) * point_stride_u() + fb * cin * kFilterBlock;
  }
  // A point's transformed tiles are stored chunk by chunk: input channels [q chunk, +width) of
  // the block's tiles as one (block x width) panel, chunk q at q * chunk * block.
  int64_t chunks() const { return (cin + chunk - 1) / chunk; }
  int64_t chunk_width(int64_t q) const { return std::min(chunk, cin - q * chunk); }
};

// The products of one point for a block of `tiles` tiles and one filter block: C (tiles x 32,
// leading dimension ldc) = the sum over the taps of V_i (tiles x C_in) U_i (C_in x 32), one call
// per chunk of input channels (the first writes C, the others add to it). a[i] is U_i's panel,
// b[i] V_i's point, laid out as Problem::chunks says.
class ChunkedProducts {
 public:
  ChunkedProducts(const Problem& pb, int64_t tiles, int64_t ldc)
      : chunk_(pb.chunk), chunks_(pb.chunks()), rows_(pb.block) {
    const int64_t widths[2] = {pb.chunk, pb.chunk_width(chunks_ - 1)};
    for (int adds = 0; adds < 2; ++adds)
      for (int last = 0; last < 2; ++last)
        kernels_[adds][last] =
            BatchGemm(kFilterBlock, tiles, widths[last], widths[last], ldc, adds == 1);
  }
  void operator()(const float* const* a, const float* const* b, int64_t count, float* c) const {
    const float* aq[BatchGemm::kMaxBatch];
    const float* bq[BatchGemm::kMaxBatch];
    for (int64_t q = 0; q < chunks_; ++q) {
      const int64_t c0 = q * chunk_;
      for (int64_t i = 0; i < count; ++i) {
        aq[i] = a[i] + c0 * kFilterBlock;
        bq[i] = b[i] + c0 * rows_;
      }
      kernels_[q > 0 ? 1 : 0][q == chunks_ - 1 ? 1 : 0](aq, bq, count, c);
    }
  }

 private:
  int64_t chunk_, chunks_, rows_;
  BatchGemm kernels_[2][2];  // [adds to C][the last chunk, possibly narrower]
};

// A frame's tiles of one block, transformed: which source frame it holds.
struct FrameSlot {
  int64_t frame = -1;
  float* v = nullptr;
};

// U = G g G^T for every filter, packed for the products: filter block fb of point p of tap t is
// a (C_in x kFilterBlock) row-major panel. `weights` is (kt, C_in, 9, C_out padded).
void transform_filters(const Problem& pb, const float* weights, float* u) {
  const int64_t fbs = pb.filter_blocks, panel = pb.cin * kFilterBlock, pu = pb.point_stride_u();
  parallel_for(pb.taps * fbs, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t tap = i / fbs, fb = i % fbs;
      for (int64_t ci = 0; ci < pb.cin; ++ci) {
        const float* taps = weights + (tap * pb.cin + ci) * 9 * pb.cout_padded + fb * kFilterBlock;
        float* dst = u + tap * kPoints * pu + fb * panel + ci * kFilterBlock;
        pb.kernels->weight_block(taps, pb.cout_padded, kFilterBlock, dst, pu);
      }
    }
  });
}

// The tile's (sample, row, column) from its index in the block grid.
struct TileIndex {
  int64_t n, ty, tx;
};
TileIndex tile_at(const Problem& pb, int64_t tile) {
  return {tile / (pb.tiles_y * pb.tiles_x), (tile / pb.tiles_x) % pb.tiles_y, tile % pb.tiles_x};
}

// Tiles [first_tile, + count) of source frame `frame`, transformed into the block's rows
// [first_row, + count) at v (Problem::chunks' layout).
void transform_frame(const Problem& pb, int64_t first_tile, int64_t count, int64_t frame, float* v,
                     int64_t first_row) {
  const float* patch[kPoints];
  const float* chunk_patch[kPoints];
  for (int64_t j = 0; j < count; ++j) {
    const TileIndex tile = tile_at(pb, first_tile + j);
    const float* frame_base = pb.x + (tile.n * pb.in_t + frame) * pb.in_h * pb.in_w * pb.cin;
    for (int64_t a = 0; a < kAlpha; ++a) {
      const int64_t sy = pb.h.source(tile.ty * kTile + a);
      for (int64_t b = 0; b < kAlpha; ++b) {
        const int64_t sx = pb.w.source(tile.tx * kTile + b);
        patch[a * kAlpha + b] =
            sy < 0 || sx < 0 ? pb.zeros : frame_base + (sy * pb.in_w + sx) * pb.cin;
      }
    }
    for (int64_t q = 0; q < pb.chunks(); ++q) {
      const int64_t c0 = q * pb.chunk, width = pb.chunk_width(q);
      for (int64_t i = 0; i < kPoints; ++i) chunk_patch[i] = patch[i] + c0;
      pb.kernels->input_tile(chunk_patch, width, v + c0 * pb.block + (first_row + j) * width,
                             pb.point_stride_v());
    }
  }
}

// Output channels [c0, c1) of a block's tiles in output frame `frame` from the products m: tile
// j's point p at m + p * point_stride + j * row (channel c0 first).
void write_outputs(const Problem& pb, int64_t first_tile, int64_t count, int64_t frame, int64_t c0,
                   int64_t c1, const float* m, int64_t row, int64_t point_stride) {
  float* pixels[kTile * kTile];
  for (int64_t j = 0; j < count; ++j) {
    const TileIndex tile = tile_at(pb, first_tile + j);
    float* frame_base = pb.dst + (tile.n * pb.out_t + frame) * pb.out_h * pb.out_w * pb.cout + c0;
    for (int64_t r = 0; r < kTile; ++r)
      for (int64_t s = 0; s < kTile; ++s) {
        const int64_t oy = tile.ty * kTile + r, ox = tile.tx * kTile + s;
        pixels[r * kTile + s] =
            oy < pb.out_h && ox < pb.out_w ? frame_base + (oy * pb.out_w + ox) * pb.cout : nullptr;
      }
    pb.kernels->output_tile(m + j * row, point_stride, c1 - c0,
                            pb.bias != nullptr ? pb.bias + c0 : nullptr, pixels, pb.accumulate);
  }
}

// The taps of output frame `ot` that read a source frame: how many, which, and which frame.
struct FrameTaps {
  int64_t count = 0;
  int64_t tap[BatchGemm::kMaxBatch];
  int64_t frame[BatchGemm::kMaxBatch];
};
FrameTaps frame_taps(const Problem& pb, int64_t ot) {
  FrameTaps ft;
  for (int64_t tap = 0; tap < pb.taps; ++tap) {
    const int64_t f = pb.t.source(ot + tap);
    if (f < 0) continue;
    ft.tap[ft.count] = tap;
    ft.frame[ft.count] = f;
    ++ft.count;
  }
  return ft;
}

// The 4x4 output tiles of one output frame across the batch.
int64_t output_tiles(int64_t batch, const WinogradAxis& h, const WinogradAxis& w) {
  return batch * ((h.out() + kTile - 1) / kTile) * ((w.out() + kTile - 1) / kTile);
}

// Seconds since `start`, added to `total` when profiling (else nothing is timed).
class PhaseTimer {
 public:
  explicit PhaseTimer(double* total) : total_(total) {
    if (total_ != nullptr) start_ = std::chrono::steady_clock::now();
  }
  ~PhaseTimer() {
    if (total_ != nullptr)
      *total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  double* total_;
  std::chrono::steady_clock::time_point start_;
};

// One block's tiles for filter blocks [fb0, fb1), through every output frame.
void run_block(const Problem& pb, int64_t b, int64_t fb0, int64_t fb1, FrameSlot* slots, float* m,
               const ChunkedProducts& full, const ChunkedProducts& last,
               double* transform_seconds) {
  const int64_t first = b * pb.block, count = std::min(pb.block, pb.tiles - first);
  const ChunkedProducts& gemm = count == pb.block ? full : last;
  std::vector<const float*> a(static_cast<size_t>(pb.taps)), bv(static_cast<size_t>(pb.taps));
  std::vector<int64_t> taps(static_cast<size_t>(pb.taps));
  std::vector<FrameSlot*> frames(static_cast<size_t>(pb.taps));
  for (int64_t ot = 0; ot < pb.out_t; ++ot) {
    int64_t used = 0;
    for (int64_t tap = 0; tap < pb.taps; ++tap) {
      const int64_t f = pb.t.source(ot + tap);
      if (f < 0) continue;
      taps[static_cast<size_t>(used)] = tap;
      frames[static_cast<size_t>(used)] = nullptr;
      for (int64_t s = 0; s < pb.taps; ++s)
        if (slots[s].frame == f) frames[static_cast<size_t>(used)] = &slots[s];
      ++used;
    }
    // Fill the missing frames into slots no tap of this output frame reads.
    for (int64_t i = 0; i < used; ++i) {
      if (frames[static_cast<size_t>(i)] != nullptr) continue;
      const int64_t f = pb.t.source(ot + taps[static_cast<size_t>(i)]);
      for (int64_t s = 0; s < pb.taps; ++s) {
        const bool taken =
            std::find(frames.begin(), frames.begin() + used, &slots[s]) != frames.begin() + used;
        if (taken) continue;
        slots[s].frame = f;
        {
          const PhaseTimer timer(transform_seconds);
          transform_frame(pb, first, count, f, slots[s].v, 0);
        }
        for (int64_t k = i; k < used; ++k)  // a repeated frame (upsampled time) shares the slot
          if (frames[static_cast<size_t>(k)] == nullptr &&
              pb.t.source(ot + taps[static_cast<size_t>(k)]) == f)
            frames[static_cast<size_t>(k)] = &slots[s];
        break;
      }
    }
    for (int64_t p = 0; p < kPoints; ++p)
      for (int64_t fb = fb0; fb < fb1; ++fb) {
        for (int64_t i = 0; i < used; ++i) {
          a[static_cast<size_t>(i)] = pb.filter(taps[static_cast<size_t>(i)], p, fb);
          bv[static_cast<size_t>(i)] = frames[static_cast<size_t>(i)]->v + p * pb.point_stride_v();
        }
        gemm(a.data(), bv.data(), used, m + p * pb.point_stride_m() + fb * kFilterBlock);
      }
    const PhaseTimer timer(transform_seconds);
    write_outputs(pb, first, count, ot, fb0 * kFilterBlock, std::min(pb.cout, fb1 * kFilterBlock),
                  m + fb0 * kFilterBlock, pb.cout_padded, pb.point_stride_m());
  }
}

// Many blocks: every block reads all filters, so they are transformed once up front; threads take
// blocks (split into filter-block ranges when blocks are few). Returns the transforms' seconds
// when profiling. `weights` null: a dry run, which only allocates.
double run_fused(Problem& pb, const float* weights) {
  // Which thread computes what does not change any result.
  const int64_t max_threads = omp_get_max_threads();
  const int64_t ranges = std::min(pb.filter_blocks, (2 * max_threads + pb.blocks - 1) / pb.blocks);
  const int64_t items = pb.blocks * ranges;
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(max_threads, items));
  const int64_t slot_floats = kPoints * pb.point_stride_v();
  const int64_t m_floats = kPoints * pb.point_stride_m();
  Tensor filters = Tensor::empty({pb.taps * kPoints * pb.point_stride_u()});
  Tensor scratch = Tensor::empty({threads, pb.taps * slot_floats + m_floats});
  Tensor zeros = Tensor::zeros({pb.cin});
  if (weights == nullptr) return 0;
  pb.zeros = zeros.data();
  pb.filters = filters.data();
  const bool timed = profiling();
  std::vector<double> transform_seconds(static_cast<size_t>(threads), 0.0);
  double filter_seconds = 0;
  {
    const PhaseTimer timer(timed ? &filter_seconds : nullptr);
    transform_filters(pb, weights, filters.data());
  }
  const ChunkedProducts full(pb, pb.block, pb.cout_padded);
  const int64_t rest = pb.tiles % pb.block;
  const ChunkedProducts last = rest == 0 ? full : ChunkedProducts(pb, rest, pb.cout_padded);
  // Inside another parallel region parallel_for runs inline; each caller then needs its own row.
  std::vector<float> private_scratch(omp_in_parallel() ? static_cast<size_t>(scratch.dim(1)) : 0);
  parallel_for(items, 1, [&](int64_t i0, int64_t i1) {
    float* mine = private_scratch.empty() ? scratch.data() + omp_get_thread_num() * scratch.dim(1)
                                          : private_scratch.data();
    std::vector<FrameSlot> slots(static_cast<size_t>(pb.taps));
    for (int64_t s = 0; s < pb.taps; ++s) slots[static_cast<size_t>(s)].v = mine + s * slot_floats;
    float* m = mine + pb.taps * slot_floats;
    double* seconds = timed && private_scratch.empty()
                          ? &transform_seconds[static_cast<size_t>(omp_get_thread_num())]
                          : nullptr;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / ranges, r = i % ranges;
      for (auto& s : slots) s.frame = -1;  // a slot holds one block's tiles
      run_block(pb, b, r * pb.filter_blocks / ranges, (r + 1) * pb.filter_blocks / ranges,
                slots.data(), m, full, last, seconds);
    }
  });
  // The filter transform ran on all threads at once; the others per thread, averaged.
  double total = 0;
  for (const double s : transform_seconds) total += s;
  return filter_seconds + total / static_cast<double>(threads);
}

// Output frames whose products run together in run_wide: each filter panel is read from L2 by
// that many frames before the next point's panel replaces it (a panel of 3 temporal taps of 512
// input channels is 192 KiB; the frames' products, 297 KiB each at 64 tiles, wait in scratch).
constexpr int64_t kFrameGroup = 4;

// One block holds every tile (small frames, where a layer's filters outweigh its activations):
// every source frame is transformed once, together; then each thread takes filter blocks,
// transforms their filters into its own scratch (they are read by this block only, so they never
// make a round trip through memory) and runs the products and output transforms for their
// channels, point by point over a group of output frames.
double run_wide(Problem& pb, const float* weights) {
  const int64_t max_threads = omp_get_max_threads();
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(max_threads, pb.filter_blocks));
  const int64_t pv = pb.point_stride_v(), frame_floats = kPoints * pv;
  const int64_t pu = pb.cin * kFilterBlock + kStridePad;  // one filter block's point stride
  const int64_t pm = pb.block * kFilterBlock + kStridePad;
  const int64_t group = std::max<int64_t>(1, std::min(kFrameGroup, pb.out_t));
  const int64_t m_floats = kPoints * pm;
  Tensor frames = Tensor::empty({pb.in_t, frame_floats});
  Tensor scratch = Tensor::empty({threads, pb.taps * kPoints * pu + group * m_floats});
  Tensor zeros = Tensor::zeros({pb.cin});
  if (weights == nullptr) return 0;
  pb.zeros = zeros.data();
  const bool timed = profiling();
  double input_seconds = 0;
  {
    const PhaseTimer timer(timed ? &input_seconds : nullptr);
    parallel_for(pb.in_t * pb.block, 4, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t f = r / pb.block, j = r % pb.block;
        transform_frame(pb, j, 1, f, frames.data() + f * frame_floats, j);
      }
    });
  }
  const ChunkedProducts gemm(pb, pb.block, kFilterBlock);
  std::vector<double> transform_seconds(static_cast<size_t>(threads), 0.0);
  std::vector<float> private_scratch(omp_in_parallel() ? static_cast<size_t>(scratch.dim(1)) : 0);
  parallel_for(pb.filter_blocks, 1, [&](int64_t fb0, int64_t fb1) {
    float* u = private_scratch.empty() ? scratch.data() + omp_get_thread_num() * scratch.dim(1)
                                       : private_scratch.data();
    float* m = u + pb.taps * kPoints * pu;
    double* seconds = timed && private_scratch.empty()
                          ? &transform_seconds[static_cast<size_t>(omp_get_thread_num())]
                          : nullptr;
    const float* a[BatchGemm::kMaxBatch];
    const float* b[BatchGemm::kMaxBatch];
    for (int64_t fb = fb0; fb < fb1; ++fb) {
      {
        const PhaseTimer timer(seconds);
        for (int64_t tap = 0; tap < pb.taps; ++tap)
          for (int64_t ci = 0; ci < pb.cin; ++ci)
            pb.kernels->weight_block(
                weights + (tap * pb.cin + ci) * 9 * pb.cout_padded + fb * kFilterBlock,
                pb.cout_padded, kFilterBlock, u + tap * kPoints * pu + ci * kFilterBlock, pu);
      }
      const int64_t c0 = fb * kFilterBlock, c1 = std::min(pb.cout, c0 + kFilterBlock);
      for (int64_t o0 = 0; o0 < pb.out_t; o0 += group) {
        const int64_t o1 = std::min(pb.out_t, o0 + group);
        FrameTaps taps[kFrameGroup];
        for (int64_t ot = o0; ot < o1; ++ot) taps[ot - o0] = frame_taps(pb, ot);
        for (int64_t p = 0; p < kPoints; ++p)
          for (int64_t ot = o0; ot < o1; ++ot) {
            const FrameTaps& ft = taps[ot - o0];
            for (int64_t i = 0; i < ft.count; ++i) {
              a[i] = u + (ft.tap[i] * kPoints + p) * pu;
              b[i] = frames.data() + ft.frame[i] * frame_floats + p * pv;
            }
            gemm(a, b, ft.count, m + (ot - o0) * m_floats + p * pm);
          }
        const PhaseTimer timer(seconds);
        for (int64_t ot = o0; ot < o1; ++ot)
          write_outputs(pb, 0, pb.block, ot, c0, c1, m + (ot - o0) * m_floats, kFilterBlock, pm);
      }
    }
  });
  double total = 0;
  for (const double sec : transform_seconds) total += sec;
  return input_seconds + total / static_cast<double>(threads);
}

}  // namespace

struct WinogradConv::Packed {
  std::once_flag made;
  Tensor weights;
};

WinogradConv::WinogradConv(WeightSource weight, Tensor bias)
    : weight_(std::move(weight)), bias_(std::move(bias)), packed_(std::make_shared<Packed>()) {
  const int r = weight_.rank();
  if ((r != 4 && r != 5) || weight_.dim(-1) != 3 || weight_.dim(-2) != 3)
    fail("Winograd convolution needs a (O, I, [kT,] 3, 3) weight, got ",
         to_string(weight_.shape()));
  out_channels_ = weight_.dim(0);
  in_channels_ = weight_.dim(1);
  taps_t_ = r == 5 ? weight_.dim(2) : 1;
}

const float* WinogradConv::packed_weights() const {
  std::call_once(packed_->made, [this] {
    const int64_t cout_padded = (out_channels_ + kFilterBlock - 1) / kFilterBlock * kFilterBlock;
    Tensor packed = Tensor::zeros({taps_t_, in_channels_, 9, cout_padded});
    weight_.read([&](const float* w) {
      parallel_for(taps_t_ * in_channels_, 16, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t tap = r / in_channels_, ci = r % in_channels_;
          float* dst = packed.data() + r * 9 * cout_padded;
          for (int64_t co = 0; co < out_channels_; ++co) {
            const float* src = w + ((co * in_channels_ + ci) * taps_t_ + tap) * 9;
            for (int64_t k = 0; k < 9; ++k) dst[k * cout_padded + co] = src[k];
          }
        }
      });
    });
    packed_->weights = std::move(packed);
  });
  return packed_->weights.data();
}

bool WinogradConv::applies(const Shape& weight, const std::array<int64_t, 3>& stride,
                           int64_t groups) {
  const size_t r = weight.size();
  if (groups != 1 || (r != 4 && r != 5) || weight[r - 1] != 3 || weight[r - 2] != 3) return false;
  for (size_t d = 0; d + 2 < r; ++d)
    if (stride[d] != 1) return false;
  if (r == 5 && weight[2] > BatchGemm::kMaxBatch) return false;
  // Few channels leave the products too small to pay for the transforms.
  return weight[0] >= 16 && weight[1] >= 16;
}

double WinogradConv::run(const Tensor& x, Tensor& dst, const WinogradAxis& t, const WinogradAxis& h,
                         const WinogradAxis& w, bool accumulate) const {
  const bool three_d = weight_.rank() == 5;
  if (x.rank() != (three_d ? 5 : 4) || x.dim(-1) != in_channels_)
    fail("Winograd convolution of ", to_string(weight_.shape()), " cannot take ",
         to_string(x.shape()));
  Problem pb;
  pb.t = three_d ? t : WinogradAxis{1, 1, 0, 0, false, false};
  pb.h = h;
  pb.w = w;
  pb.n = x.dim(0);
  pb.cin = in_channels_;
  pb.cout = out_channels_;
  pb.taps = taps_t_;
  pb.in_t = three_d ? x.dim(1) : 1;
  pb.in_h = x.dim(-3);
  pb.in_w = x.dim(-2);
  if (pb.t.size != pb.in_t || h.size != pb.in_h || w.size != pb.in_w || pb.t.kernel != pb.taps)
    fail("internal: Winograd axes do not describe ", to_string(x.shape()));
  pb.out_t = pb.t.out();
  pb.out_h = h.out();
  pb.out_w = w.out();
  const Shape want = three_d ? Shape{pb.n, pb.out_t, pb.out_h, pb.out_w, pb.cout}
                             : Shape{pb.n, pb.out_h, pb.out_w, pb.cout};
  if (dst.shape() != want)
    fail("internal: Winograd output ", to_string(dst.shape()), " is not ", to_string(want));
  pb.tiles_y = (pb.out_h + kTile - 1) / kTile;
  pb.tiles_x = (pb.out_w + kTile - 1) / kTile;
  pb.tiles = pb.n * pb.tiles_y * pb.tiles_x;
  pb.filter_blocks = (pb.cout + kFilterBlock - 1) / kFilterBlock;
  pb.cout_padded = pb.filter_blocks * kFilterBlock;
  const Blocking cut = blocking(cpu_isa(), pb.cin, kPoints * pb.taps * pb.cin * pb.cout_padded * 4);
  pb.block = std::min(pb.tiles, cut.tiles);
  pb.blocks = (pb.tiles + pb.block - 1) / pb.block;
  pb.chunk = cut.chunk;
  pb.accumulate = accumulate;

  if (dry_run_active() || pb.tiles == 0 || pb.out_t <= 0) {
    // Shapes only: allocate what the run would, for the plan's memory figures.
    if (pb.blocks == 1)
      run_wide(pb, nullptr);
    else
      run_fused(pb, nullptr);
    return 0;
  }
  if (!weight_.has_data()) fail("the model was built without weights");
  pb.kernels = &winograd::kernels(cpu_isa());
  pb.x = x.data();
  pb.dst = dst.data();
  pb.bias = bias_.numel() > 0 ? bias_.data() : nullptr;
  return pb.blocks == 1 ? run_wide(pb, packed_weights()) : run_fused(pb, packed_weights());
}

bool WinogradConv::pays_off(int64_t batch, const WinogradAxis& h, const WinogradAxis& w) {
  // An 8x8 output frame: 1024 -> 1024 channels over 4 such frames took 81-116 ms either way on a
  // Xeon; one 4x4 tile per frame is 13x faster tap-wise.
  constexpr int64_t kMinTiles = 4;
  return output_tiles(batch, h, w) >= kMinTiles;
}

WeightPanels WinogradConv::weight_panels() const {
  static_assert(kFilterBlock == WeightPanels::kBlock);
  const int64_t cout_padded = (out_channels_ + kFilterBlock - 1) / kFilterBlock * kFilterBlock;
  if (taps_t_ * 9 > BatchGemm::kMaxBatch)
    fail("internal: ", taps_t_ * 9, " kernel taps do not fit one batch of products");
  WeightPanels panels;
  panels.base = packed_weights();
  // (kt, C_in, 9, C_out padded): tap (t, k) of input channel ci at ((t C_in + ci) 9 + k) C_out.
  for (int64_t tap = 0; tap < taps_t_ * 9; ++tap)
    panels.tap_offset[tap] = ((tap / 9) * in_channels_ * 9 + tap % 9) * cout_padded;
  panels.block_stride = kFilterBlock;
  panels.row_stride = 9 * cout_padded;
  return panels;
}

int64_t WinogradConv::executed_flops(const Tensor& x, const WinogradAxis& t, const WinogradAxis& h,
                                     const WinogradAxis& w) const {
  const bool three_d = weight_.rank() == 5;
  const WinogradAxis ta = three_d ? t : WinogradAxis{1, 1, 0, 0, false, false};
  int64_t tap_frames = 0;  // (output frame, tap) pairs that read a source frame
  for (int64_t ot = 0; ot < ta.out(); ++ot)
    for (int64_t k = 0; k < ta.kernel; ++k) tap_frames += ta.source(ot + k) >= 0 ? 1 : 0;
  const int64_t tiles = output_tiles(x.dim(0), h, w);
  return 2 * kPoints * tiles * tap_frames * in_channels_ * out_channels_;
}

}  // namespace vvae
