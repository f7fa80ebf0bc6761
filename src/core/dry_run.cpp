#include "core/dry_run.hpp"

#include <algorithm>
#include <atomic>

namespace vvae {
namespace {
thread_local bool t_dry_run = false;
std::atomic<int64_t> g_scratchpad{0};
std::atomic<int64_t> g_conv_flops{0};
std::atomic<int64_t> g_executed_conv_flops{0};
std::atomic<int64_t> g_conv_nanoseconds{0};
std::atomic<int64_t> g_largest_tensor_bytes{0};
}  // namespace

bool dry_run_active() {
  return t_dry_run;
}

DryRunScope::DryRunScope() : previous_(t_dry_run) {
  t_dry_run = true;
}
DryRunScope::~DryRunScope() {
  t_dry_run = previous_;
}

void note_scratchpad_bytes(int64_t bytes) {
  int64_t seen = g_scratchpad.load();
  while (bytes > seen && !g_scratchpad.compare_exchange_weak(seen, bytes)) {
  }
}
int64_t max_scratchpad_bytes() {
  return g_scratchpad.load();
}
void reset_scratchpad_bytes() {
  g_scratchpad.store(0);
}

void count_conv_flops(int64_t flops) {
  g_conv_flops.fetch_add(flops);
}
int64_t conv_flops() {
  return g_conv_flops.load();
}
void count_executed_conv_flops(int64_t flops) {
  g_executed_conv_flops.fetch_add(flops);
}
int64_t executed_conv_flops() {
  return g_executed_conv_flops.load();
}
void reset_conv_flops() {
  g_conv_flops.store(0);
  g_executed_conv_flops.store(0);
}

void note_tensor_bytes(int64_t bytes) {
  int64_t largest = g_largest_tensor_bytes.load();
  while (bytes > largest && !g_largest_tensor_bytes.compare_exchange_weak(largest, bytes)) {
  }
}
int64_t largest_tensor_bytes() {
  return g_largest_tensor_bytes.load();
}
void reset_largest_tensor_bytes() {
  g_largest_tensor_bytes.store(0);
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
