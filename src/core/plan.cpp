#include "core/plan.hpp"

namespace vvae {
namespace {

thread_local PlanContext* t_plan = nullptr;

void raise_to(std::atomic<int64_t>& max, int64_t value) {
  int64_t seen = max.load(std::memory_order_relaxed);
  while (value > seen && !max.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

}  // namespace

void PlanContext::Counters::allocate(int64_t bytes) {
  const int64_t now = live.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  raise_to(peak, now);
  raise_to(peak_with_weights, now + weights.load(std::memory_order_relaxed));
  raise_to(largest, bytes);
}
void PlanContext::Counters::use_weights(const void* key, int64_t bytes) {
  if (!counting_weights.load(std::memory_order_relaxed)) return;
  {
    const std::lock_guard<std::mutex> lock(seen_mutex);
    if (!seen.insert(key).second) return;
  }
  const int64_t now = weights.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  raise_to(peak_with_weights, now + live.load(std::memory_order_relaxed));
}
int64_t PlanContext::Counters::open_peak_window() {
  return peak.exchange(live.load(std::memory_order_relaxed));
}
void PlanContext::Counters::close_peak_window(int64_t peak_before, bool repeated) {
  const int64_t call_peak = peak.load(std::memory_order_relaxed);
  raise_to(peak, peak_before);
  if (repeated) raise_to(peak_with_weights, call_peak + weights.load(std::memory_order_relaxed));
}
void PlanContext::Counters::release(int64_t bytes) {
  live.fetch_sub(bytes, std::memory_order_relaxed);
}
void PlanContext::Counters::note_scratchpad(int64_t bytes) {
  raise_to(scratchpad, bytes);
}
void PlanContext::Counters::count_conv_flops(int64_t n) {
  flops.fetch_add(n, std::memory_order_relaxed);
}
void PlanContext::Counters::count_executed_conv_flops(int64_t n) {
  executed_flops.fetch_add(n, std::memory_order_relaxed);
}

PlanContext::PlanContext() : counters_(std::make_shared<Counters>()) {}

int64_t PlanContext::live_bytes() const {
  return counters_->live;
}
int64_t PlanContext::peak_bytes() const {
  return counters_->peak;
}
int64_t PlanContext::largest_tensor_bytes() const {
  return counters_->largest;
}
int64_t PlanContext::scratchpad_bytes() const {
  return counters_->scratchpad;
}
int64_t PlanContext::conv_flops() const {
  return counters_->flops;
}
int64_t PlanContext::executed_conv_flops() const {
  return counters_->executed_flops;
}

void PlanContext::count_weights_as_used() {
  counters_->counting_weights = true;
}
int64_t PlanContext::weights_used_bytes() const {
  return counters_->weights;
}
int64_t PlanContext::peak_with_weights_bytes() const {
  return counters_->peak_with_weights;
}

PlanContext* current_plan() {
  return t_plan;
}

PlanScope::PlanScope(PlanContext& plan) : previous_(t_plan) {
  t_plan = &plan;
}
PlanScope::~PlanScope() {
  t_plan = previous_;
}

}  // namespace vvae
