#include "vvae/memory.hpp"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/cpu.hpp"
#include "core/memory_stats.hpp"
#include "vvae/error.hpp"

namespace vvae {

namespace {

// The first number after `key` in a "/proc" file of "Key: value kB" lines, or -1.
int64_t proc_kib(const char* file, const std::string& key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.compare(0, key.size(), key) != 0) continue;
    std::istringstream fields(line.substr(key.size()));
    long long kib = -1;
    if (fields >> kib) return static_cast<int64_t>(kib) * 1024;
  }
  return -1;
}

}  // namespace

std::string format_memory(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) v /= 1024.0, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

MemoryLimits current_memory_limits() {
  MemoryLimits m;
  struct rlimit r {};
  if (::getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
    m.address_space_limit = static_cast<int64_t>(r.rlim_cur);
  // The pages earlier runs kept are there for the next one: they count as free.
  const int64_t kept = kept_tensor_bytes();
  const int64_t used = proc_kib("/proc/self/status", "VmSize:");
  m.address_space_used = used > kept ? used - kept : 0;
  m.available = proc_kib("/proc/meminfo", "MemAvailable:");
  if (m.available >= 0) m.available += kept;
  return m;
}

std::string memory_shortfall(int64_t need_bytes, const std::string& what,
                             const MemoryLimits& limits) {
  if (limits.address_space_limit >= 0) {
    const int64_t left = limits.address_space_limit - limits.address_space_used;
    if (need_bytes > left)
      return cat(what, " needs ~", format_memory(need_bytes), " (the plan's peak) but the ",
                 "address-space limit of ", format_memory(limits.address_space_limit),
                 " (ulimit -v) leaves ", format_memory(left > 0 ? left : 0),
                 ": raise the limit, or run a smaller clip (or smaller tiles: --tile-size, "
                 "--tile-frames)");
  }
  if (limits.available >= 0 && need_bytes > limits.available)
    return cat(what, " needs ~", format_memory(need_bytes),
               " (the plan's peak) but the machine has ", format_memory(limits.available),
               " available: free memory, or run a smaller clip (or smaller tiles: --tile-size, "
               "--tile-frames)");
  return "";
}

int64_t parse_memory_size(const std::string& text) {
  const auto bad = [&] {
    fail("memory size '", text, "' is not a size: write e.g. 8G, 1.5GiB, 800M or a byte count");
  };
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    bad();
  }
  std::string unit = text.substr(used);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string units = "KMGT";
  double scale = 1;
  if (!unit.empty()) {
    const size_t at = units.find(unit[0]);
    if (at == std::string::npos ||
        (unit.size() > 1 && unit.substr(1) != "B" && unit.substr(1) != "IB"))
      bad();
    scale = std::pow(1024.0, static_cast<double>(at + 1));
  }
  const double bytes = value * scale;
  if (!(bytes >= 1) || bytes > 9.0e18) bad();
  return static_cast<int64_t>(bytes);
}

void return_freed_memory_promptly() {
  ::mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  ::mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

int64_t runtime_allowance_bytes() {
  return (cpu_isa() == Isa::kAvx512 ? int64_t{40} : int64_t{32}) << 20;
}

int64_t resident_bytes() {
  const int64_t bytes = proc_kib("/proc/self/status", "VmRSS:");
  return bytes > 0 ? bytes : 0;
}

int64_t peak_resident_bytes() {
  const int64_t bytes = proc_kib("/proc/self/status", "VmHWM:");
  return bytes > 0 ? bytes : 0;
}

void check_memory_fits(int64_t need_bytes, const std::string& what) {
  const std::string why = memory_shortfall(need_bytes, what, current_memory_limits());
  if (!why.empty()) fail(why);
}

}  // namespace vvae
