#pragma once
// Tensor memory of the whole process: what real tensors (heap blocks and the mmap'd ones) hold
// right now, for memory tests, and the reuse of mapped blocks' pages by runs. A plan's own
// figures are in its PlanContext.

#include <cstdint>

namespace vvae {

int64_t live_tensor_bytes();
// Bytes of freed mapped blocks (64 KiB and up) kept for reuse by runs.
int64_t kept_tensor_bytes();

// Returns the kept pages now: a run fitted to a memory cap starts from what its plan counts
// (pages an earlier run kept are not in it).
void return_kept_pages();

// From now on only what memory caps allow is kept: large blocks (8 MiB and up), only during a
// run. Kept pages hold the tensor memory at the run's live peak while the memory beside it
// (video writers) moves, and a capped run's peak must stay the one its plan adds up: measured
// on a capped reconstruct, keeping every mapped block and keeping between runs put 11 and 6
// MiB above the old peak.
void keep_pages_for_memory_caps();

// While one is alive (a model run), the pages of freed mapped tensor blocks are kept for later
// ones (each takes the smallest kept piece that holds it), never above the most memory the
// run's live tensors have needed at once; the last to end returns them (core/tensor.cpp) unless
// a KeepPagesBetweenRuns is alive.
class LargeBlockReuse {
 public:
  LargeBlockReuse();
  ~LargeBlockReuse();
  LargeBlockReuse(const LargeBlockReuse&) = delete;
  LargeBlockReuse& operator=(const LargeBlockReuse&) = delete;
};

// While one is alive (a loaded model), what runs keep stays kept after they end, so that the
// next run (the next clip) takes the same pages instead of faulting in fresh ones. It never
// exceeds the most the last runs' live tensors held at once; the last to end returns it.
class KeepPagesBetweenRuns {
 public:
  KeepPagesBetweenRuns();
  ~KeepPagesBetweenRuns();
  KeepPagesBetweenRuns(const KeepPagesBetweenRuns&) = delete;
  KeepPagesBetweenRuns& operator=(const KeepPagesBetweenRuns&) = delete;
};

}  // namespace vvae
