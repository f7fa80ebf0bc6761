#include "core/file_pages.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <mutex>

namespace vvae {
namespace {

std::mutex g_mutex;
std::map<uintptr_t, uintptr_t> g_mappings;  // begin -> end

}  // namespace

void register_file_mapping(const void* begin, int64_t bytes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const auto b = reinterpret_cast<uintptr_t>(begin);
  g_mappings[b] = b + static_cast<uintptr_t>(bytes);
}

void unregister_file_mapping(const void* begin) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_mappings.erase(reinterpret_cast<uintptr_t>(begin));
}

void release_file_pages(const void* data, int64_t bytes) {
  if (data == nullptr || bytes <= 0) return;
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const auto end = begin + static_cast<uintptr_t>(bytes);
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_mappings.upper_bound(begin);
    if (it == g_mappings.begin()) return;
    --it;
    if (end > it->second) return;  // not inside one mapping
  }
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

}  // namespace vvae
