#pragma once
// The kernels' side of a plan (core/plan.hpp). The rule every kernel follows:
//
//   Tensor out = Tensor::empty(out_shape);   // after the shape work and its checks
//   if (dry_run_active()) return out;        // a plan stops here: nothing is computed
//
// Shape-only tensors report themselves to the plan; kernels report what the plan cannot see
// from tensors (oneDNN scratchpads, convolution FLOPs) through the calls below, which do
// nothing in a real run.

#include <cstdint>

#include "core/plan.hpp"

namespace vvae {

// True while the current thread runs a plan.
inline bool dry_run_active() {
  return current_plan() != nullptr;
}

// A oneDNN primitive's scratchpad (bytes); the plan keeps the largest.
void note_scratchpad_bytes(int64_t bytes);

// Multiply-add FLOPs (2 per MAC) of a convolution as planned: the direct-convolution count, and
// what the primitive really runs (fewer where a fused kernel does less than the direct
// convolution: UpsampleConv's 2-tap phase kernels on the low-resolution input).
void count_conv_flops(int64_t flops);
void count_executed_conv_flops(int64_t flops);

// A layer's weights (`bytes`, keyed by the layer) are read by this run: a plan of a first run
// counts them from here on (PlanContext::count_weights_as_used). Nothing in a real run.
void count_weight_use(const void* layer, int64_t bytes);

// Runs fn(i) for i in [0, n) where every call runs the same shapes (the samples or frames of a
// clip, coded one at a time into a preallocated output). A plan runs the first call only and
// counts its FLOPs n times: the others would allocate, peak and count exactly the same, so a
// plan of a long clip costs one frame, not one per frame.
template <typename Fn>
void repeat_same_shapes(int64_t n, Fn&& fn) {
  if (n <= 0) return;
  PlanContext* plan = current_plan();
  if (plan == nullptr) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  const int64_t flops = plan->conv_flops(), executed = plan->executed_conv_flops();
  // The first call's own peak: the later ones reach it with every weight the first brought in.
  PlanContext::Counters& c = *plan->counters();
  const int64_t peak_before = c.open_peak_window();
  fn(int64_t{0});
  c.close_peak_window(peak_before, n > 1);
  count_conv_flops((plan->conv_flops() - flops) * (n - 1));
  count_executed_conv_flops((plan->executed_conv_flops() - executed) * (n - 1));
}

// Wall time spent inside oneDNN convolution primitives in real runs since the last reset, for
// benchmarks (which compare it with the whole run to see what the other kernels cost).
// Process-wide, like the per-op profile (core/profile.hpp); plans never touch it.
void count_conv_seconds(double seconds);
double conv_seconds();
void reset_conv_seconds();

}  // namespace vvae
