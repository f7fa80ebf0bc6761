#pragma once
// Tensor memory of the whole process, for memory tests: what real tensors (heap blocks and the
// large mmap'd ones) hold right now. A plan's own figures are in its PlanContext.

#include <cstdint>

namespace vvae {

int64_t live_tensor_bytes();

}  // namespace vvae
