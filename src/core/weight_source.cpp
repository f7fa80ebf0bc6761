#include "core/weight_source.hpp"

#include "core/file_pages.hpp"
#include "vvae/error.hpp"

namespace vvae {

WeightSource::WeightSource(Tensor values) : values_(std::move(values)) {}

WeightSource::WeightSource(const Shape& shape, Convert convert)
    : values_(Tensor::borrow(shape, nullptr, nullptr)),
      convert_(std::make_shared<const Convert>(std::move(convert))) {}

WeightSource WeightSource::reshape(const Shape& shape) const {
  WeightSource out = *this;
  out.values_ = values_.reshape(shape);
  return out;
}

Tensor WeightSource::tensor() const {
  if (!convert_) return values_;
  Tensor t = (*convert_)();
  if (t.numel() != numel())
    fail("internal: a weight converted to ", t.numel(), " values, not ", numel());
  return t.reshape(shape());
}

void WeightSource::read(const std::function<void(const float*)>& use) const {
  if (!has_data()) fail("the model was built without weights");
  if (!convert_) {
    use(values_.data());
    release_file_pages(values_.data(), values_.bytes());
    return;
  }
  const Tensor t = tensor();
  use(t.data());
}

}  // namespace vvae
