#pragma once
// A layer's weight as its kernels read it once, to pack it into their own layout. A float32
// checkpoint tensor is a view of the file mapping whose pages are handed back after the read; an
// F16 or BF16 one is converted into a float32 buffer that lives only during the read. So a loaded
// model holds no float32 copy of its checkpoint beside the packed layouts, whatever the stored
// type (a layer that must pack again, for another layout, reads the file again).

#include <functional>
#include <memory>

#include "vvae/tensor.hpp"

namespace vvae {

class WeightSource {
 public:
  // The values of `shape` as a new float32 tensor, the stored bytes' pages handed back after.
  using Convert = std::function<Tensor()>;

  WeightSource() = default;
  // A float32 tensor is a source as it is (a view of a mapping or owned values; shape-only for
  // plans): implicit, so kernels take plain tensors in tests and derived layers.
  WeightSource(Tensor values);  // NOLINT(google-explicit-constructor)
  WeightSource(const Shape& shape, Convert convert);

  bool defined() const { return values_.defined(); }
  // False for a plan's shape-only weights.
  bool has_data() const { return convert_ != nullptr || values_.has_data(); }
  const Shape& shape() const { return values_.shape(); }
  int rank() const { return values_.rank(); }
  int64_t dim(int axis) const { return values_.dim(axis); }
  int64_t numel() const { return values_.numel(); }

  // The same values under another shape with as many elements (a linear layer as a 1x1 conv).
  WeightSource reshape(const Shape& shape) const;

  // Calls use(values) with numel() float32 values in row-major order, then hands the stored
  // bytes' resident pages back (a no-op for memory that is not a file mapping).
  void read(const std::function<void(const float*)>& use) const;
  // The values as a float32 tensor (a view for float32 sources, a conversion otherwise): for
  // layers that derive weights of their own from them.
  Tensor tensor() const;

 private:
  Tensor values_;  // the values, or (when converted) a shape-only tensor of their shape
  std::shared_ptr<const Convert> convert_;
};

}  // namespace vvae
