#include "vvae/tensor.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/memory_stats.hpp"
#include "core/plan.hpp"
#include "core/threads.hpp"
#include "vvae/error.hpp"
#include "vvae/limits.hpp"

namespace vvae {
namespace {

// Large blocks come straight from mmap, 2 MiB aligned and marked for transparent huge pages:
// first touching a 128 MiB activation then takes ~64 page faults instead of ~32000 (measured
// 4-5x faster).
constexpr int64_t kHugeBlock = int64_t{8} << 20;
constexpr int64_t kHugePage = int64_t{2} << 20;
constexpr int64_t kAlign = 64;

// A large block's own mapping, one huge page longer than the block so it can be aligned.
struct Mapping {
  void* base = nullptr;
  size_t bytes = 0;  // mapped
  int64_t size = 0;  // the block's bytes inside the mapping
  float* data = nullptr;
};

Mapping map_huge(int64_t bytes) {
  Mapping m;
  m.size = bytes;
  m.bytes = static_cast<size_t>(bytes + kHugePage);
  void* p = ::mmap(nullptr, m.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return m;
  m.base = p;
  const auto aligned = (reinterpret_cast<uintptr_t>(p) + kHugePage - 1) & ~uintptr_t(kHugePage - 1);
  ::madvise(reinterpret_cast<void*>(aligned), static_cast<size_t>(bytes), MADV_HUGEPAGE);
  m.data = reinterpret_cast<float*>(aligned);
  return m;
}

void unmap(const std::vector<Mapping>& mappings) {
  for (const Mapping& m : mappings) ::munmap(m.base, m.bytes);
}

// The real (heap or mapped) tensor storage of the process; plans count their shape-only
// tensors in their own PlanContext instead.
//
// Large blocks freed while a model runs are kept for the next block of the same size, so a
// layer's activations reuse the pages of the one before instead of faulting in fresh ones (the
// kernel clears each new page, and a huge page may first need compaction: a 32 MiB GroupNorm
// output took 24 ms on a Xeon VM, against 3 ms into reused pages). Kept blocks never hold the
// tensor memory above the most that live tensors have needed at once since the run began:
// whenever live tensors grow, kept blocks are returned, oldest first, until live + kept fits
// under that mark. A run's peak thus stays the live peak that memory plans predict, and what is
// kept is returned when the last run ends. Outside a run, freeing returns memory at once.
class TensorMemory {
 public:
  int64_t live() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return live_;
  }
  int64_t kept() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return kept_bytes_;
  }

  void enter_run() {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (runs_++ == 0) high_water_ = live_;
  }
  void leave_run() {
    std::vector<Mapping> released;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (--runs_ == 0) {
        released.swap(kept_);
        kept_bytes_ = 0;
      }
    }
    unmap(released);
  }

  float* allocate(int64_t bytes, Mapping* large) {
    if (bytes >= kHugeBlock) {
      std::vector<Mapping> released;
      if (take_kept(bytes, large, &released)) return large->data;
      unmap(released);
      *large = map_huge(bytes);
      if (large->data == nullptr) release_count(bytes);
      return large->data;
    }
    std::vector<Mapping> released;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      grow(bytes, &released);
    }
    unmap(released);
    const int64_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    float* data = static_cast<float*>(std::aligned_alloc(kAlign, static_cast<size_t>(rounded)));
    if (data == nullptr) release_count(bytes);
    return data;
  }

  void release(int64_t bytes, float* data, const Mapping& large) {
    if (large.data == nullptr) {
      std::free(data);
      release_count(bytes);
      return;
    }
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      live_ -= bytes;
      if (runs_ > 0) {
        kept_.push_back(large);
        kept_bytes_ += bytes;
        return;
      }
    }
    ::munmap(large.base, large.bytes);
  }

 private:
  // A kept block of exactly `bytes` when there is one; else counts the block as live.
  bool take_kept(int64_t bytes, Mapping* large, std::vector<Mapping>* released) {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = kept_.begin(); it != kept_.end(); ++it)
      if (it->size == bytes) {
        *large = *it;
        kept_.erase(it);
        kept_bytes_ -= bytes;
        live_ += bytes;
        return true;
      }
    grow(bytes, released);
    return false;
  }
  // Counts new live bytes, returning kept blocks until live + kept fits under the high mark.
  void grow(int64_t bytes, std::vector<Mapping>* released) {
    live_ += bytes;
    high_water_ = std::max(high_water_, live_);
    while (!kept_.empty() && live_ + kept_bytes_ > high_water_) {
      released->push_back(kept_.front());
      kept_bytes_ -= kept_.front().size;
      kept_.erase(kept_.begin());
    }
  }
  void release_count(int64_t bytes) {
    const std::lock_guard<std::mutex> lock(mutex_);
    live_ -= bytes;
  }

  std::mutex mutex_;
  int runs_ = 0;
  int64_t live_ = 0, kept_bytes_ = 0, high_water_ = 0;
  std::vector<Mapping> kept_;  // oldest first
};

TensorMemory& tensor_memory() {
  static TensorMemory memory;
  return memory;
}

// An aligned block of tensor memory; in a plan only its size is counted, by the plan (no memory
// is taken).
struct Block {
  explicit Block(int64_t bytes, PlanContext* plan) : size(bytes) {
    if (plan != nullptr) {
      counters = plan->counters();
      counters->allocate(size);
      return;
    }
    if (bytes == 0) return;
    data = tensor_memory().allocate(bytes, &large);
    if (data == nullptr) fail("out of memory allocating ", bytes, " bytes");
  }
  ~Block() {
    if (counters)
      counters->release(size);
    else if (data != nullptr)
      tensor_memory().release(size, data, large);
  }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  int64_t size;
  float* data = nullptr;
  Mapping large;                                    // the mapping behind a large block
  std::shared_ptr<PlanContext::Counters> counters;  // the plan counting a shape-only block
};

void check_shape(const Shape& shape) {
  if (shape.size() > static_cast<size_t>(Tensor::kMaxRank))
    fail("tensor rank ", shape.size(), " exceeds the maximum of ", Tensor::kMaxRank);
  for (int64_t d : shape)
    if (d < 0) fail("negative dimension in shape ", to_string(shape));
  limits::checked_numel(shape, "a tensor");
}

}  // namespace

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string to_string(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

Tensor::Tensor(Shape shape, float* data, std::shared_ptr<void> owner)
    : shape_(std::move(shape)),
      numel_(vvae::numel(shape_)),
      data_(data),
      owner_(std::move(owner)),
      defined_(true) {}

Tensor Tensor::empty(const Shape& shape) {
  check_shape(shape);
  auto block = std::make_shared<Block>(vvae::numel(shape) * int64_t{sizeof(float)}, current_plan());
  float* data = block->data;
  return Tensor(shape, data, std::move(block));
}

Tensor Tensor::zeros(const Shape& shape) {
  return full(shape, 0.0f);
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  if (t.data_ != nullptr) std::fill(t.data_, t.data_ + t.numel_, value);
  return t;
}

Tensor Tensor::borrow(const Shape& shape, float* data, std::shared_ptr<void> owner) {
  check_shape(shape);
  return Tensor(shape, data, std::move(owner));
}

int64_t Tensor::dim(int axis) const {
  const int r = rank();
  const int a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r) fail("axis ", axis, " out of range for a tensor of rank ", r);
  return shape_[static_cast<size_t>(a)];
}

Tensor Tensor::reshape(const Shape& shape) const {
  check_shape(shape);
  if (vvae::numel(shape) != numel_)
    fail("cannot reshape ", to_string(shape_), " to ", to_string(shape));
  return Tensor(shape, data_, owner_);
}

Tensor Tensor::slice0(int64_t begin, int64_t end) const {
  if (rank() == 0 || begin < 0 || end < begin || end > shape_[0])
    fail("slice [", begin, ", ", end, ") out of range for ", to_string(shape_));
  Shape shape = shape_;
  shape[0] = end - begin;
  const int64_t row = shape_[0] == 0 ? 0 : numel_ / shape_[0];
  return Tensor(shape, data_ == nullptr ? nullptr : data_ + begin * row, owner_);
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_);
  if (data_ != nullptr && t.data_ != nullptr)
    std::memcpy(t.data_, data_, static_cast<size_t>(bytes()));
  return t;
}

int64_t count_non_finite(const Tensor& t) {
  const float* p = t.data();
  if (p == nullptr) return 0;
  std::atomic<int64_t> count{0};
  parallel_for(t.numel(), 1 << 16, [&](int64_t i0, int64_t i1) {
    int64_t n = 0;
    for (int64_t i = i0; i < i1; ++i) n += std::isfinite(p[i]) ? 0 : 1;
    if (n > 0) count.fetch_add(n);
  });
  return count.load();
}

int64_t live_tensor_bytes() {
  return tensor_memory().live();
}

int64_t kept_tensor_bytes() {
  return tensor_memory().kept();
}

LargeBlockReuse::LargeBlockReuse() {
  tensor_memory().enter_run();
}
LargeBlockReuse::~LargeBlockReuse() {
  tensor_memory().leave_run();
}

}  // namespace vvae
