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

// Blocks from 64 KiB up are mapped here rather than by malloc (which would map them too, as
// return_freed_memory_promptly asks), so that their pages can be kept for reuse (TensorMemory).
// Those from 8 MiB up are 2 MiB aligned and marked for transparent huge pages: first touching a
// 128 MiB activation then takes ~64 page faults instead of ~32000 (measured 4-5x faster).
constexpr int64_t kMappedBlock = int64_t{64} << 10;
constexpr int64_t kHugeBlock = int64_t{8} << 20;
constexpr int64_t kHugePage = int64_t{2} << 20;
constexpr int64_t kPage = int64_t{4} << 10;
constexpr int64_t kAlign = 64;

// Whole pages of mapped memory: a mapped block, or a kept piece of one.
struct Pages {
  char* data = nullptr;
  int64_t bytes = 0;  // a multiple of kPage
  char* end() const { return data + bytes; }
};

// What a mapped block of `bytes` holds once touched: whole huge pages from kHugeBlock up.
int64_t mapped_bytes_for(int64_t bytes) {
  const int64_t page = bytes >= kHugeBlock ? kHugePage : kPage;
  return (bytes + page - 1) / page * page;
}

// Fresh pages; from kHugeBlock up 2 MiB aligned: one huge page more is mapped and the unaligned
// ends are returned.
Pages map_pages(int64_t bytes) {
  const int64_t wanted = mapped_bytes_for(bytes);
  const bool huge = bytes >= kHugeBlock;
  const size_t mapped = static_cast<size_t>(huge ? wanted + kHugePage : wanted);
  void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return {};
  char* base = static_cast<char*>(p);
  if (!huge) return {base, wanted};
  const auto aligned = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base) + kHugePage - 1) &
                                               ~uintptr_t(kHugePage - 1));
  if (aligned > base) ::munmap(base, static_cast<size_t>(aligned - base));
  char* tail = aligned + wanted;
  if (tail < base + mapped) ::munmap(tail, static_cast<size_t>(base + mapped - tail));
  ::madvise(aligned, static_cast<size_t>(wanted), MADV_HUGEPAGE);
  return {aligned, wanted};
}

void unmap(const std::vector<Pages>& pieces) {
  for (const Pages& p : pieces) ::munmap(p.data, static_cast<size_t>(p.bytes));
}

// The real (heap or mapped) tensor storage of the process; plans count their shape-only
// tensors in their own PlanContext instead. Mapped blocks count their whole pages, which is what
// they hold once touched.
//
// Mapped blocks freed while a model runs are kept, and a later one takes its pages from
// the smallest kept piece that holds it (the rest stays kept; freed neighbours join again), so
// a layer's activations reuse the pages of the one before instead of faulting in fresh ones:
// the kernel clears each new page, and a huge page may first need compaction (a 32 MiB
// GroupNorm output took 24 ms on a Xeon VM, against 3 ms into reused pages); a convolution's
// scratch of a few MiB faulted in ~1000 small pages on every call. Kept pieces never
// hold the tensor memory above the most that live tensors have needed at once since the run
// began: whenever live tensors grow, kept pieces are returned, oldest first, until live + kept
// fits under that mark. A run's peak thus stays the live peak that memory plans predict, and
// what is kept is returned when the last run ends, or, while a model is loaded
// (KeepPagesBetweenRuns), when the last model goes: a run then starts with the mark at what
// the runs before it kept, and its peak is the higher of the two. With neither a run nor
// a model, freeing returns memory at once; once a plan has been fitted to a memory cap, only
// large blocks are kept, only during a run (keep_pages_for_memory_caps).
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
    if (runs_++ == 0) high_water_ = live_ + kept_bytes_;
  }
  void leave_run() { leave(&runs_); }
  void enter_keeper() {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++keepers_;
  }
  void leave_keeper() { leave(&keepers_); }
  void keep_for_caps() {
    const std::lock_guard<std::mutex> lock(mutex_);
    capped_ = true;
  }
  void return_kept() {
    std::vector<Pages> released;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      released.swap(kept_);
      kept_bytes_ = 0;
    }
    unmap(released);
  }

  // A mapped block's pages (data null when the system has none).
  Pages allocate_mapped(int64_t bytes) {
    const int64_t wanted = mapped_bytes_for(bytes);
    std::vector<Pages> released;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      const Pages reused = take_kept(wanted);
      if (reused.data != nullptr) {
        live_ += wanted;
        return reused;
      }
      grow(wanted, &released);
    }
    unmap(released);
    const Pages fresh = map_pages(bytes);
    if (fresh.data == nullptr) uncount(wanted);
    return fresh;
  }
  void release_mapped(const Pages& pages) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      live_ -= pages.bytes;
      if (keeps(pages)) {
        keep(pages);
        return;
      }
    }
    unmap({pages});
  }

  float* allocate_small(int64_t bytes) {
    std::vector<Pages> released;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      grow(bytes, &released);
    }
    unmap(released);
    const int64_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
    float* data = static_cast<float*>(std::aligned_alloc(kAlign, static_cast<size_t>(rounded)));
    if (data == nullptr) uncount(bytes);
    return data;
  }
  void release_small(int64_t bytes, float* data) {
    std::free(data);
    uncount(bytes);
  }

 private:
  // Whether freed pages are kept (the lock held).
  bool keeps(const Pages& pages) const {
    if (capped_) return runs_ > 0 && pages.bytes >= kHugeBlock;
    return runs_ > 0 || keepers_ > 0;
  }
  // Ends a run or a keeper; returns what is kept when neither is left.
  void leave(int* count) {
    std::vector<Pages> released;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (--*count == 0 && runs_ == 0 && (keepers_ == 0 || capped_)) {
        released.swap(kept_);
        kept_bytes_ = 0;
      }
    }
    unmap(released);
  }
  // The first `wanted` bytes of the smallest kept piece that holds them; null data if none.
  Pages take_kept(int64_t wanted) {
    auto best = kept_.end();
    for (auto it = kept_.begin(); it != kept_.end(); ++it)
      if (it->bytes >= wanted && (best == kept_.end() || it->bytes < best->bytes)) best = it;
    if (best == kept_.end()) return {};
    const Pages taken{best->data, wanted};
    if (best->bytes == wanted)
      kept_.erase(best);
    else
      *best = {best->data + wanted, best->bytes - wanted};
    kept_bytes_ -= wanted;
    return taken;
  }
  // Keeps freed pages, joined with the kept pieces on either side of them.
  void keep(Pages pages) {
    kept_bytes_ += pages.bytes;
    for (auto it = kept_.begin(); it != kept_.end();) {
      if (it->end() == pages.data || pages.end() == it->data) {
        pages = {std::min(it->data, pages.data), it->bytes + pages.bytes};
        it = kept_.erase(it);
      } else {
        ++it;
      }
    }
    kept_.push_back(pages);
  }
  // Counts new live bytes, returning kept pieces until live + kept fits under the high mark.
  void grow(int64_t bytes, std::vector<Pages>* released) {
    live_ += bytes;
    high_water_ = std::max(high_water_, live_);
    while (!kept_.empty() && live_ + kept_bytes_ > high_water_) {
      released->push_back(kept_.front());
      kept_bytes_ -= kept_.front().bytes;
      kept_.erase(kept_.begin());
    }
  }
  void uncount(int64_t bytes) {
    const std::lock_guard<std::mutex> lock(mutex_);
    live_ -= bytes;
  }

  std::mutex mutex_;
  int runs_ = 0, keepers_ = 0;
  bool capped_ = false;  // keep_pages_for_memory_caps()
  int64_t live_ = 0, kept_bytes_ = 0, high_water_ = 0;
  std::vector<Pages> kept_;  // oldest first
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
    if (bytes >= kMappedBlock) {
      mapped = tensor_memory().allocate_mapped(bytes);
      data = reinterpret_cast<float*>(mapped.data);
    } else {
      data = tensor_memory().allocate_small(bytes);
    }
    if (data == nullptr) fail("out of memory allocating ", bytes, " bytes");
  }
  ~Block() {
    if (counters)
      counters->release(size);
    else if (mapped.data != nullptr)
      tensor_memory().release_mapped(mapped);
    else if (data != nullptr)
      tensor_memory().release_small(size, data);
  }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  int64_t size;
  float* data = nullptr;
  Pages mapped;                                     // a mapped block's pages
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

void return_kept_pages() {
  tensor_memory().return_kept();
}

void keep_pages_for_memory_caps() {
  tensor_memory().keep_for_caps();
}

LargeBlockReuse::LargeBlockReuse() {
  tensor_memory().enter_run();
}
LargeBlockReuse::~LargeBlockReuse() {
  tensor_memory().leave_run();
}

KeepPagesBetweenRuns::KeepPagesBetweenRuns() {
  tensor_memory().enter_keeper();
}
KeepPagesBetweenRuns::~KeepPagesBetweenRuns() {
  tensor_memory().leave_keeper();
}

}  // namespace vvae
