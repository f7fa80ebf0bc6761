#pragma once
// Threading: every kernel threads with OpenMP, the runtime Debian's oneDNN is built on, so the
// thread count set here governs both.

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace vvae {

// Runs fn(begin, end) over [0, n) split into chunks of at least `grain` items, in parallel.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = (n + grain - 1) / grain;
  const int64_t threads = std::min<int64_t>(omp_get_max_threads(), max_chunks);
  if (threads <= 1 || omp_in_parallel()) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(static_cast <int>(threads))
  {
    const int64_t t = omp_get_thread_num();
    const int64_t begin = n * t / threads;
    const int64_t end = n * (t + 1) / threads;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace vvae
