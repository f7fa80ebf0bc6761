#include "ops/gemm_conv.hpp"

#include <omp.h>

#include <algorithm>
#include <mutex>

#include "core/dry_run.hpp"
#include "core/threads.hpp"
#include "ops/gemm.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

constexpr int64_t kFilterBlock = WeightPanels::kBlock;  // output channels per panel (GEMM m)
constexpr int64_t kSegment = 64;  // output pixels per product at most (GEMM n)

// The convolution in 3-D terms (2-D: one frame, one temporal tap).
struct Problem {
  const float* x = nullptr;
  float* dst = nullptr;
  const float* bias = nullptr;
  WeightPanels weights;
  int64_t n = 0, cin = 0, cout = 0;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, stride[3] = {1, 1, 1},
          pad[3] = {0, 0, 0};
  int64_t filter_blocks = 0;
  bool accumulate = false;
  bool flat = false;  // 1x1, stride 1, no padding: the whole tensor is one row of pixels

  int64_t taps() const { return k[0] * k[1] * k[2]; }
  // Output rows (n, t, y) with out[2] pixels each; flat: rows of kSegment pixels.
  int64_t rows() const {
    if (flat) return (n * out[0] * out[1] * out[2] + kSegment - 1) / kSegment;
    return n * out[0] * out[1];
  }
};

// Adds what the products start from: the bias, onto the residual or over the old contents.
void start_row(const Problem& pb, float* c, int64_t pixels, int64_t c0, int64_t c1) {
  for (int64_t j = 0; j < pixels; ++j) {
    float* o = c + j * pb.cout;
    for (int64_t ch = c0; ch < c1; ++ch) {
      const float b = pb.bias != nullptr ? pb.bias[ch] : 0.0f;
      o[ch] = pb.accumulate ? o[ch] + b : b;
    }
  }
}

// A's bytes one product call reads at most: a batch of (C_in x kFilterBlock) weight panels
// is read again for every block of columns the kernel keeps in registers, so a batch larger than
// the L2 cache would stream from memory that many times; longer batches are cut into calls that
// each add onto C (a few KiB, in L1).
constexpr int64_t kPanelBudgetBytes = int64_t{256} << 10;
// The weights of the filter blocks one thread runs over many rows: a share of the last-level
// cache, where they stay while the rows stream through.
constexpr int64_t kGroupBudgetBytes = int64_t{4} << 20;

// Output pixels [x0, x1) of one row against column taps [q0, q1) of every input row, all inside
// the row for these pixels; filter blocks [fb0, fb1). c holds the bias (or the running sum).
void segment(const Problem& pb, const float* const* rows, const int64_t* row_taps, int64_t nrows,
             int64_t x0, int64_t x1, int64_t q0, int64_t q1, int64_t fb0, int64_t fb1, float* c) {
  const float* a[BatchGemm::kMaxBatch];
  const float* b[BatchGemm::kMaxBatch];
  const int64_t pixels = x1 - x0;
  const int64_t panel_bytes = pb.cin * kFilterBlock * static_cast<int64_t>(sizeof(float));
  const int64_t chunk = std::max<int64_t>(1, kPanelBudgetBytes / panel_bytes);
  for (int64_t fb = fb0; fb < fb1; ++fb) {
    const int64_t m = std::min(kFilterBlock, pb.cout - fb * kFilterBlock);
    const BatchGemm gemm(m, pixels, pb.cin, pb.stride[2] * pb.cin, pb.cout, true,
                         pb.weights.row_stride);
    float* out = c + x0 * pb.cout + fb * kFilterBlock;
    int64_t count = 0;
    for (int64_t r = 0; r < nrows; ++r)
      for (int64_t q = q0; q < q1; ++q) {
        a[count] = pb.weights.panel(row_taps[r] * pb.k[2] + q, fb);
        b[count] = rows[r] + ((x0 * pb.stride[2] + q - pb.pad[2]) * pb.cin);
        if (++count == chunk) {
          gemm(a, b, count, out);
          count = 0;
        }
      }
    if (count > 0) gemm(a, b, count, out);
  }
}

// The output pixels [lo, hi) whose column tap q reads inside the input row.
struct ColumnRange {
  int64_t lo, hi;
  bool operator==(const ColumnRange&) const = default;
};
ColumnRange columns_inside(const Problem& pb, int64_t q) {
  const int64_t sw = pb.stride[2], pw = pb.pad[2], w = pb.out[2];
  // ox * sw + q - pw in [0, in): ox >= ceil((pw - q) / sw), ox <= floor((in - 1 + pw - q) / sw).
  const int64_t first = pw - q <= 0 ? 0 : (pw - q + sw - 1) / sw;
  const int64_t last_plus = pb.in[2] - 1 + pw - q < 0 ? 0 : (pb.in[2] - 1 + pw - q) / sw + 1;
  const int64_t lo = std::min(w, first), hi = std::min(w, last_plus);
  return {lo, std::max(lo, hi)};
}

// One output row, filter blocks [fb0, fb1).
void run_row(const Problem& pb, int64_t row, int64_t fb0, int64_t fb1) {
  const int64_t c0 = fb0 * kFilterBlock, c1 = std::min(pb.cout, fb1 * kFilterBlock);
  if (pb.flat) {
    const int64_t total = pb.n * pb.out[0] * pb.out[1] * pb.out[2];
    const int64_t p0 = row * kSegment, p1 = std::min(total, p0 + kSegment);
    float* c = pb.dst + p0 * pb.cout;
    start_row(pb, c, p1 - p0, c0, c1);
    const float* src = pb.x + p0 * pb.cin;
    const int64_t zero = 0;
    segment(pb, &src, &zero, 1, 0, p1 - p0, 0, 1, fb0, fb1, c);
    return;
  }
  const int64_t s = row / (pb.out[0] * pb.out[1]), ot = (row / pb.out[1]) % pb.out[0],
                oy = row % pb.out[1];
  // The input rows (t, y) the kernel's (a, p) taps read, inside the clip.
  const float* rows[BatchGemm::kMaxBatch];
  int64_t row_taps[BatchGemm::kMaxBatch];
  int64_t nrows = 0;
  for (int64_t a = 0; a < pb.k[0]; ++a) {
    const int64_t it = ot * pb.stride[0] + a - pb.pad[0];
    if (it < 0 || it >= pb.in[0]) continue;
    for (int64_t p = 0; p < pb.k[1]; ++p) {
      const int64_t iy = oy * pb.stride[1] + p - pb.pad[1];
      if (iy < 0 || iy >= pb.in[1]) continue;
      rows[nrows] = pb.x + ((s * pb.in[0] + it) * pb.in[1] + iy) * pb.in[2] * pb.cin;
      row_taps[nrows] = a * pb.k[1] + p;
      ++nrows;
    }
  }
  float* c = pb.dst + ((s * pb.out[0] + ot) * pb.out[1] + oy) * pb.out[2] * pb.cout;
  const int64_t W = pb.out[2];
  start_row(pb, c, W, c0, c1);
  // Column taps that read inside the row for the same pixels share their products: every
  // pixel's product is one matrix row, so the edge pixels of a padded row never become products
  // of one row each.
  for (int64_t q0 = 0; q0 < pb.k[2];) {
    const ColumnRange range = columns_inside(pb, q0);
    int64_t q1 = q0 + 1;
    while (q1 < pb.k[2] && columns_inside(pb, q1) == range) ++q1;
    for (int64_t x0 = range.lo; x0 < range.hi; x0 += kSegment)
      segment(pb, rows, row_taps, nrows, x0, std::min(range.hi, x0 + kSegment), q0, q1, fb0, fb1,
              c);
    q0 = q1;
  }
}

}  // namespace

struct GemmConv::Packed {
  std::once_flag made;
  Tensor weights;
};

GemmConv::GemmConv(WeightSource weight, Tensor bias, const ConvGeometry& geometry)
    : weight_(std::move(weight)),
      bias_(std::move(bias)),
      geometry_(geometry),
      packed_(std::make_shared<Packed>()) {
  if (!applies(weight_.shape(), geometry_))
    fail("internal: a tap-wise convolution cannot take ", to_string(weight_.shape()));
  out_channels_ = weight_.dim(0);
  in_channels_ = weight_.dim(1);
  const int s = geometry_.spatial_dims;
  for (int i = 0; i < s; ++i) kernel_[3 - s + i] = weight_.dim(2 + i);
}

bool GemmConv::applies(const Shape& weight, const ConvGeometry& g) {
  if (g.groups != 1 || static_cast<int>(weight.size()) != g.spatial_dims + 2) return false;
  int64_t taps = 1;
  for (size_t i = 2; i < weight.size(); ++i) taps *= weight[i];
  // Few channels leave the products too small to beat oneDNN's direct kernels.
  return taps <= BatchGemm::kMaxBatch && weight[0] >= 16 && weight[1] >= 16;
}

const float* GemmConv::packed_weights() const {
  std::call_once(packed_->made, [this] {
    const int64_t taps = kernel_[0] * kernel_[1] * kernel_[2];
    const int64_t fbs = (out_channels_ + kFilterBlock - 1) / kFilterBlock;
    Tensor packed = Tensor::zeros({taps, fbs, in_channels_, kFilterBlock});
    weight_.read([&](const float* w) {
      parallel_for(taps * fbs, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t tap = i / fbs, fb = i % fbs;
          float* dst = packed.data() + i * in_channels_ * kFilterBlock;
          for (int64_t j = 0; j < kFilterBlock && fb * kFilterBlock + j < out_channels_; ++j)
            for (int64_t ci = 0; ci < in_channels_; ++ci)
              dst[ci * kFilterBlock + j] =
                  w[((fb * kFilterBlock + j) * in_channels_ + ci) * taps + tap];
        }
      });
    });
    packed_->weights = std::move(packed);
  });
  return packed_->weights.data();
}

void GemmConv::run(const Tensor& x, Tensor& dst, bool accumulate) const {
  if (dry_run_active() || dst.numel() == 0) return;
  if (!weight_.has_data()) fail("the model was built without weights");
  WeightPanels own;
  own.base = packed_weights();
  const int64_t fbs = (out_channels_ + kFilterBlock - 1) / kFilterBlock;
  for (int64_t tap = 0; tap < kernel_[0] * kernel_[1] * kernel_[2]; ++tap)
    own.tap_offset[tap] = tap * fbs * in_channels_ * kFilterBlock;
  own.block_stride = in_channels_ * kFilterBlock;
  run(x, dst, accumulate, own);
}

void GemmConv::run(const Tensor& x, Tensor& dst, bool accumulate,
                   const WeightPanels& weights) const {
  if (dry_run_active() || dst.numel() == 0) return;
  const int s = geometry_.spatial_dims;
  Problem pb;
  pb.x = x.data();
  pb.dst = dst.data();
  pb.bias = bias_.numel() > 0 ? bias_.data() : nullptr;
  pb.n = x.dim(0);
  pb.cin = in_channels_;
  pb.cout = out_channels_;
  for (int i = 0; i < s; ++i) {
    const size_t d = static_cast<size_t>(3 - s + i), g = static_cast<size_t>(i);
    pb.in[d] = x.dim(1 + i);
    pb.out[d] = dst.dim(1 + i);
    pb.k[d] = kernel_[d];
    pb.stride[d] = geometry_.stride[g];
    pb.pad[d] = geometry_.pad_lo[g];
  }
  pb.filter_blocks = (pb.cout + kFilterBlock - 1) / kFilterBlock;
  pb.accumulate = accumulate;
  pb.flat = pb.taps() == 1 && pb.stride[0] == 1 && pb.stride[1] == 1 && pb.stride[2] == 1 &&
            pb.pad[0] == 0 && pb.pad[1] == 0 && pb.pad[2] == 0;
  pb.weights = weights;
  // Work items: (group of filter blocks, row), group-major, so each thread's rows reuse one
  // group's weights from the cache; a group's weights fit kGroupBudgetBytes. Wide layers (27
  // taps of 512 channels: 1.8 MB per filter block) would otherwise stream all their weights
  // from memory for every row. Groups come in multiples of the thread count, so that each thread
  // takes whole groups of equal size, and multiply when rows are too few to share out.
  const int64_t rows = pb.rows(), threads = omp_get_max_threads(), fbs = pb.filter_blocks;
  const int64_t block_bytes =
      pb.taps() * pb.cin * kFilterBlock * static_cast<int64_t>(sizeof(float));
  int64_t groups =
      std::clamp<int64_t>((fbs * block_bytes + kGroupBudgetBytes - 1) / kGroupBudgetBytes, 1, fbs);
  if (groups > 1) groups = std::min(fbs, (groups + threads - 1) / threads * threads);
  while (groups < fbs && rows * groups < 2 * threads) groups = std::min(fbs, 2 * groups);
  parallel_for(groups * rows, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i / rows;
      run_row(pb, i % rows, g * fbs / groups, (g + 1) * fbs / groups);
    }
  });
}

}  // namespace vvae
