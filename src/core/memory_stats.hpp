#pragma once
// Tensor memory of the whole process: what real tensors (heap blocks and the large mmap'd ones)
// hold right now, for memory tests, and the reuse of large blocks during a run. A plan's own
// figures are in its PlanContext.

#include <cstdint>

namespace vvae {

int64_t live_tensor_bytes();
// Bytes of freed large blocks kept for reuse by the runs alive now.
int64_t kept_tensor_bytes();

// While one is alive (a model run), the pages of freed large tensor blocks are kept for later
// large blocks (each takes the smallest kept piece that holds it), never above the most memory
// the run's live tensors have needed at once; the last to end returns them (core/tensor.cpp).
class LargeBlockReuse {
 public:
  LargeBlockReuse();
  ~LargeBlockReuse();
  LargeBlockReuse(const LargeBlockReuse&) = delete;
  LargeBlockReuse& operator=(const LargeBlockReuse&) = delete;
};

}  // namespace vvae
