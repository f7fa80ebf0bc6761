#pragma once
// A dry run executes a model's control flow with shape-only tensors: allocations are counted but
// not made and kernels return right after shaping their output. It tells `vvae info` the exact
// output shapes, tiles and peak activation memory of a run without computing anything.

#include <cstdint>

namespace vvae {

bool dry_run_active();

class DryRunScope {
 public:
  DryRunScope();
  ~DryRunScope();
  DryRunScope(const DryRunScope&) = delete;
  DryRunScope& operator=(const DryRunScope&) = delete;

 private:
  bool previous_;
};

// Largest oneDNN scratchpad seen (bytes); primitives report it, dry runs read it.
void note_scratchpad_bytes(int64_t bytes);
int64_t max_scratchpad_bytes();
void reset_scratchpad_bytes();

// Multiply-add FLOPs (2 per MAC) of the convolutions run or planned since the last reset: the
// "direct-convolution FLOPs" benchmarks divide by.
void count_conv_flops(int64_t flops);
int64_t conv_flops();
// The FLOPs the convolution primitives really run: fewer where a fused kernel does less than
// the direct convolution (UpsampleConv's 2-tap phase kernels on the low-resolution input).
void count_executed_conv_flops(int64_t flops);
int64_t executed_conv_flops();
void reset_conv_flops();  // both counters

// The largest single tensor allocated since the last reset (bytes; dry runs count too):
// benchmarks bound a run's peak memory by it ("weights + 3 x the largest activation").
void note_tensor_bytes(int64_t bytes);
int64_t largest_tensor_bytes();
void reset_largest_tensor_bytes();

// Runs fn(i) for i in [0, n) where every call runs the same shapes (the samples or frames of a
// clip, coded one at a time into a preallocated output). A dry run plans the first call only and
// counts its FLOPs n times: the others would allocate, peak and count exactly the same, so a
// plan of a long clip costs one frame, not one per frame.
template <typename Fn>
void repeat_same_shapes(int64_t n, Fn&& fn) {
  if (n <= 0) return;
  if (!dry_run_active()) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  const int64_t flops = conv_flops(), executed = executed_conv_flops();
  fn(int64_t{0});
  count_conv_flops((conv_flops() - flops) * (n - 1));
  count_executed_conv_flops((executed_conv_flops() - executed) * (n - 1));
}

// Wall time spent inside oneDNN convolution primitives since the last reset (benchmarks compare
// it with the whole run to see what the other kernels cost).
void count_conv_seconds(double seconds);
double conv_seconds();
void reset_conv_seconds();

}  // namespace vvae
