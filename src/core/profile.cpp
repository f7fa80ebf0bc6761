#include "core/profile.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <utility>

#include "core/dry_run.hpp"

namespace vvae {
namespace {

std::atomic<bool> g_on{false};
std::mutex g_mutex;
std::map<std::pair<std::string, std::string>, ProfileEntry> g_entries;

}  // namespace

void set_profiling(bool on) {
  g_on.store(on, std::memory_order_relaxed);
}

bool profiling() {
  return g_on.load(std::memory_order_relaxed) && !dry_run_active();
}

void profile_record(const std::string& op, const std::string& shape, double seconds,
                    double transform_seconds, int64_t executed_flops) {
  if (!profiling()) return;
  const std::lock_guard<std::mutex> lock(g_mutex);
  ProfileEntry& e = g_entries[{op, shape}];
  e.op = op;
  e.shape = shape;
  e.calls += 1;
  e.seconds += seconds;
  e.transform_seconds += transform_seconds;
  e.executed_flops += executed_flops;
}

std::vector<ProfileEntry> take_profile() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<ProfileEntry> out;
  for (auto& [key, e] : g_entries) out.push_back(std::move(e));
  g_entries.clear();
  std::sort(out.begin(), out.end(),
            [](const ProfileEntry& a, const ProfileEntry& b) { return a.seconds > b.seconds; });
  return out;
}

ProfileTimer::ProfileTimer(const char* op, const Shape& shape) : op_(op), on_(profiling()) {
  if (!on_) return;
  shape_ = shape;
  start_ = std::chrono::steady_clock::now();
}

ProfileTimer::~ProfileTimer() {
  if (!on_) return;
  profile_record(op_, to_string(shape_),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
}

}  // namespace vvae
