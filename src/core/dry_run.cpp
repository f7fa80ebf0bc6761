#include "core/dry_run.hpp"

#include <atomic>

namespace vvae {
namespace {
std::atomic<int64_t> g_conv_nanoseconds{0};
}  // namespace

void note_scratchpad_bytes(int64_t bytes) {
  if (PlanContext* plan = current_plan()) plan->counters()->note_scratchpad(bytes);
}

void count_weight_use(const void* layer, int64_t bytes) {
  if (PlanContext* plan = current_plan()) plan->counters()->use_weights(layer, bytes);
}

void count_conv_flops(int64_t flops) {
  if (PlanContext* plan = current_plan()) plan->counters()->count_conv_flops(flops);
}

void count_executed_conv_flops(int64_t flops) {
  if (PlanContext* plan = current_plan()) plan->counters()->count_executed_conv_flops(flops);
}

void count_conv_seconds(double seconds) {
  g_conv_nanoseconds.fetch_add(static_cast<int64_t>(seconds * 1e9));
}
double conv_seconds() {
  return static_cast<double>(g_conv_nanoseconds.load()) * 1e-9;
}
void reset_conv_seconds() {
  g_conv_nanoseconds.store(0);
}

}  // namespace vvae
