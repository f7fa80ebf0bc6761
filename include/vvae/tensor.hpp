#pragma once
// A dense, row-major float32 tensor of rank 0..5 with 64-bit sizes. Storage is shared between
// copies (copying a Tensor is cheap); it is either an aligned heap block or a region of a
// memory-mapped file kept alive by the tensor.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vvae {

using Shape = std::vector<int64_t>;

int64_t numel(const Shape& shape);
std::string to_string(const Shape& shape);  // "[1, 3, 8, 64, 64]"

class Tensor {
 public:
  static constexpr int kMaxRank = 5;

  Tensor() = default;
  static Tensor empty(const Shape& shape);  // uninitialised
  static Tensor zeros(const Shape& shape);
  static Tensor full(const Shape& shape, float value);
  // A tensor over memory owned by `owner` (for example a mapped file); no copy is made.
  static Tensor borrow(const Shape& shape, float* data, std::shared_ptr<void> owner);

  // False only for a default-constructed tensor (no shape); a tensor of a plan (shape-only)
  // or with no elements is defined.
  bool defined() const { return defined_; }
  // Whether the values are there: false for a plan's shape-only tensors (and undefined ones).
  bool has_data() const { return defined_ && (data_ != nullptr || numel_ == 0); }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int axis) const;  // negative axes count from the end
  int64_t numel() const { return numel_; }
  int64_t bytes() const { return numel_ * static_cast<int64_t>(sizeof(float)); }

  float* data() { return data_; }
  const float* data() const { return data_; }

  // Same storage, new shape with the same number of elements.
  Tensor reshape(const Shape& shape) const;
  // Rows [begin, end) along axis 0, sharing storage.
  Tensor slice0(int64_t begin, int64_t end) const;
  Tensor clone() const;
  // True when no other tensor shares this storage, so it may be overwritten in place.
  bool storage_unique() const { return owner_ != nullptr && owner_.use_count() == 1; }

 private:
  Tensor(Shape shape, float* data, std::shared_ptr<void> owner);

  Shape shape_;
  int64_t numel_ = 0;
  float* data_ = nullptr;
  std::shared_ptr<void> owner_;
  bool defined_ = false;
};

// How many of the tensor's values are NaN or infinite (0 for a tensor without data).
int64_t count_non_finite(const Tensor& t);

}  // namespace vvae
