#pragma once
// A plan runs a model's control flow with shape-only tensors: allocations are counted but not
// made, and every kernel returns right after shaping its output (the rule core/dry_run.hpp
// spells out for ops). It tells `vvae info` and the memory pre-check the exact output shapes,
// tiles, peak activation memory and FLOPs of a run without computing anything.
//
// Everything a plan measures lives in its PlanContext, never in process-wide state: a PlanScope
// makes a context the current thread's plan, kernels and tensors report to that thread's plan,
// so plans on different threads, and real runs beside them, never see each other's counts.
//
//   PlanContext plan;
//   { PlanScope scope(plan); model.encode(Tensor::empty(shape)); }
//   plan.peak_bytes(), plan.conv_flops(), ...

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_set>

namespace vvae {

class PlanContext {
 public:
  PlanContext();

  // Tensor bytes live now, and at most since the context was made (shape-only tensors).
  int64_t live_bytes() const;
  int64_t peak_bytes() const;
  // The largest single tensor planned: benchmarks bound a run's peak by it.
  int64_t largest_tensor_bytes() const;
  // The largest oneDNN scratchpad a primitive of the plan asks for.
  int64_t scratchpad_bytes() const;
  // Multiply-add FLOPs (2 per MAC) of the convolutions planned: the "direct-convolution FLOPs"
  // benchmarks divide by, and what the primitives really run (fewer where a fused kernel does
  // less than the direct convolution: UpsampleConv's 2-tap phase kernels).
  int64_t conv_flops() const;
  int64_t executed_conv_flops() const;

  // A plan of a model's first run in its direction: the weights come into memory as their
  // layers first run (read from the file, packed), so the early layers' activations peak beside
  // only the weights used so far. With this on, layers report their weights' first use
  // (count_weight_use, core/dry_run.hpp) and peak_with_weights_bytes() is the peak of tensors
  // plus the weights in by then.
  void count_weights_as_used();
  int64_t weights_used_bytes() const;
  int64_t peak_with_weights_bytes() const;

  // What a plan's tensors and kernels report (through core/dry_run.hpp for kernels).
  struct Counters;
  const std::shared_ptr<Counters>& counters() const { return counters_; }

 private:
  // Shared with the shape-only blocks the plan counts, which may outlive the context.
  std::shared_ptr<Counters> counters_;
};

// The current thread's plan, or nullptr in a real run.
PlanContext* current_plan();

// Makes `plan` the current thread's plan for the scope's lifetime (scopes nest).
class PlanScope {
 public:
  explicit PlanScope(PlanContext& plan);
  ~PlanScope();
  PlanScope(const PlanScope&) = delete;
  PlanScope& operator=(const PlanScope&) = delete;

 private:
  PlanContext* previous_;
};

// The counters of a plan, as tensors and kernels update them.
struct PlanContext::Counters {
  void allocate(int64_t bytes);
  void release(int64_t bytes);
  void note_scratchpad(int64_t bytes);
  void count_conv_flops(int64_t flops);
  void count_executed_conv_flops(int64_t flops);

  // Weights first used (once per key: the layer), when the plan counts them.
  void use_weights(const void* key, int64_t bytes);
  // A call's own peak (repeat_same_shapes): open() starts counting it from what is live now and
  // returns the peak so far, close() restores the overall peak and, when the call is repeated,
  // raises peak_with_weights to the call's peak beside every weight counted by then (the later
  // calls run with all of them in).
  int64_t open_peak_window();
  void close_peak_window(int64_t peak_before, bool repeated);

  std::atomic<int64_t> live{0}, peak{0}, largest{0}, scratchpad{0}, flops{0}, executed_flops{0};
  std::atomic<int64_t> weights{0}, peak_with_weights{0};
  std::atomic<bool> counting_weights{false};
  std::mutex seen_mutex;
  std::unordered_set<const void*> seen;
};

}  // namespace vvae
