#pragma once
// How much memory a run may still take: the process's address-space limit (RLIMIT_AS, `ulimit
// -v`) less what it already maps, and the machine's available memory (/proc/meminfo's
// MemAvailable). A run whose plan does not fit is refused before it computes.

#include <cstdint>
#include <string>

namespace vvae {

struct MemoryLimits {
  int64_t address_space_limit = -1;  // bytes; -1: unlimited
  int64_t address_space_used = 0;    // what the process maps now (VmSize)
  int64_t available = -1;            // MemAvailable in bytes; -1: unknown
};

MemoryLimits current_memory_limits();

// Why `need_bytes` more cannot fit within `limits` (one line with the numbers), or "" when it
// fits. `what` names the run ("decoding [1, 16, 5, 32, 32]").
std::string memory_shortfall(int64_t need_bytes, const std::string& what,
                             const MemoryLimits& limits);

// Fails with memory_shortfall() when `need_bytes` does not fit now.
void check_memory_fits(int64_t need_bytes, const std::string& what);

std::string format_memory(int64_t bytes);  // "1.5 GiB"

}  // namespace vvae
