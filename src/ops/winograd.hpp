#pragma once
// Winograd F(4x4, 3x3) convolution on channels-last activations: 2-D (N, H, W, C) and 3-D
// (N, T, H, W, C) with 3x3 spatial taps, stride 1, any number of temporal taps, groups 1.
//
// Each 4x4 output tile costs 36 products per (input, output) channel pair instead of 144: the
// 6x6 input patch and the filters are transformed (ops/winograd_kernels.hpp), the products
// become 36 matrix products over the channels (LIBXSMM, ops/gemm.hpp), and the result is
// transformed back. A 3-D convolution is the sum over its temporal taps of 2-D ones: each input
// frame's tiles are transformed once and kept while the output frames that read them run, and
// the temporal taps are summed inside the matrix products.
//
// Zero padding and nearest x2 upsampling are read through index maps, never materialised: an
// axis either pads its source with zeros or upsamples a source padded by one on both sides
// (UpsampleConv's input). Filters are transformed at each call from a copy of the weights laid
// out for it (output channels innermost, made at the first call; a checkpoint's file pages are
// then returned), so the model keeps one copy of its weights; the transformed filters, 4x the
// size, live only while the convolution runs.
//
// Threads take blocks of tiles; the tile blocks and the order of every sum are fixed by the
// shapes alone, so results are bitwise identical for any thread count.

#include <array>
#include <cstdint>
#include <memory>

#include "core/weight_source.hpp"
#include "ops/gemm.hpp"
#include "vvae/tensor.hpp"

namespace vvae {

// How the convolution's input coordinate u along one axis reads the source tensor: the source
// padded by pad_lo / pad_hi (zeros, or copies of its edge values when `replicate`), nearest-x2
// upsampled after padding when `upsampled` (UpsampleConv's input: padded by one on both sides).
struct WinogradAxis {
  int64_t size = 1;        // source extent
  int64_t kernel = 3;      // taps along this axis
  int64_t pad_lo = 0;      // padding before the source
  int64_t pad_hi = 0;      // padding after
  bool upsampled = false;  // nearest x2 of the padded source
  bool replicate = false;  // the padding repeats the edge values instead of zeros

  int64_t out() const;  // output extent
  // The source index input coordinate u reads, or -1 where the input is zero: in the zero
  // padding, and past the input's extent (where the last tiles overhang the output).
  int64_t source(int64_t u) const {
    if (u < 0 || u >= extent()) return -1;
    const int64_t s = (upsampled ? (u + 1) >> 1 : u) - pad_lo;
    if (s >= 0 && s < size) return s;
    if (!replicate) return -1;
    return s < 0 ? 0 : size - 1;
  }
  int64_t extent() const {  // the convolution's input extent
    const int64_t padded = size + pad_lo + pad_hi;
    return upsampled ? 2 * (padded - 2) + 2 : padded;
  }
};

class WinogradConv {
 public:
  WinogradConv() = default;
  // weight (O, I, 3, 3) or (O, I, kt, 3, 3) in the checkpoint layout; bias (O) or undefined.
  WinogradConv(WeightSource weight, Tensor bias);

  bool defined() const { return out_channels_ > 0; }
  // Whether a convolution of this weight shape, stride and group count can run here.
  static bool applies(const Shape& weight, const std::array<int64_t, 3>& stride, int64_t groups);

  // x (N, [T,] H, W, C_in) -> dst (N, [T',] H', W', C_out); dst += the convolution when
  // `accumulate`. `t` is ignored for 2-D inputs. Returns the seconds the transforms took (an
  // average over the threads) when profiling (core/profile.hpp), else 0.
  double run(const Tensor& x, Tensor& dst, const WinogradAxis& t, const WinogradAxis& h,
             const WinogradAxis& w, bool accumulate) const;
  // Whether Winograd pays off for this output: a frame of few tiles (deep layers of small clips
  // and tiles) gives products too narrow to repay the filter transforms each run makes (two 4x4
  // output frames of 1024 -> 128 channels: 40 ms, against 3 ms tap-wise on a Xeon).
  static bool pays_off(int64_t batch, const WinogradAxis& h, const WinogradAxis& w);
  // The packed weights as tap-wise panels, for the convolutions that do not pay off (GemmConv
  // runs them without a second copy).
  WeightPanels weight_panels() const;
  // Multiply-add FLOPs (2 per MAC) of the transformed-domain products a run does.
  int64_t executed_flops(const Tensor& x, const WinogradAxis& t, const WinogradAxis& h,
                         const WinogradAxis& w) const;

 private:
  struct Packed;
  const float* packed_weights() const;  // (kt, C_in, 9, C_out padded), made once

  WeightSource weight_;
  Tensor bias_;
  int64_t out_channels_ = 0, in_channels_ = 0, taps_t_ = 1;
  std::shared_ptr<Packed> packed_;
};

}  // namespace vvae
