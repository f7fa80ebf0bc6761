#pragma once
// How much memory a run may still take: the process's address-space limit (RLIMIT_AS, `ulimit
// -v`) less what it already maps, and the machine's available memory (/proc/meminfo's
// MemAvailable). A run whose plan does not fit is refused before it computes.

#include <cstdint>
#include <string>

namespace vvae {

struct MemoryLimits {
  int64_t address_space_limit = -1;  // bytes; -1: unlimited
  int64_t address_space_used = 0;    // what the process maps now (VmSize), less kept pages
  int64_t available = -1;            // MemAvailable in bytes; -1: unknown
  // (Both count the tensor pages a loaded model keeps between runs as free: the next run takes
  // them first.)
};

MemoryLimits current_memory_limits();

// Why `need_bytes` more cannot fit within `limits` (one line with the numbers), or "" when it
// fits. `what` names the run ("decoding [1, 16, 5, 32, 32]").
std::string memory_shortfall(int64_t need_bytes, const std::string& what,
                             const MemoryLimits& limits);

// Fails with memory_shortfall() when `need_bytes` does not fit now.
void check_memory_fits(int64_t need_bytes, const std::string& what);

std::string format_memory(int64_t bytes);  // "1.5 GiB"

// A memory size as users write it: a number of bytes, or a number with a binary unit K, M, G or
// T (also KB/KiB, ...; any case): "2G", "1.5GiB", "800m". Throws Error on anything else.
int64_t parse_memory_size(const std::string& text);

// What a capped run counts beyond its plan and the process at load: code the first run JITs
// (LIBXSMM kernels, oneDNN primitives) and the library pages it touches, thread stacks and
// buffers, the allocator's slack. It depends on the instruction set the kernels run at (the
// CPU's, or VVAE_MAX_ISA's cap): measured on the HunyuanVideo encodes of
// tests/memory_cap_test.sh (2 threads), 9-26 MiB on a Zen 3 (AVX2), and on a Xeon with AVX-512
// 26-28 MiB under VVAE_MAX_ISA=avx2 but 30-33 MiB at AVX-512, where oneDNN's brgemm
// convolutions bring more code. 32 MiB below AVX-512, 40 MiB at it.
int64_t runtime_allowance_bytes();

// Makes the allocator return freed blocks of 64 KiB and more to the system at once (glibc's
// default keeps up to 32 MiB blocks on its heap, which a tiled run's many tile-sized tensors
// leave resident: +26 MiB measured). Called under a memory cap; costs page faults.
void return_freed_memory_promptly();

// This process's resident memory now (VmRSS), in bytes; 0 where /proc does not say.
int64_t resident_bytes();
// Its peak resident memory so far (VmHWM), in bytes; 0 where /proc does not say.
int64_t peak_resident_bytes();

}  // namespace vvae
