#include "models/layers.hpp"

#include "vvae/error.hpp"

namespace vvae {

Conv load_conv(const Scope& scope, int64_t in, int64_t out, const std::vector<int64_t>& kernel,
               const ConvGeometry& geometry, bool bias) {
  Shape shape = {out, in / geometry.groups};
  shape.insert(shape.end(), kernel.begin(), kernel.end());
  WeightSource w = scope.weight("weight", shape);
  Tensor b = bias ? scope.param("bias", {out}) : Tensor();
  return Conv(std::move(w), std::move(b), geometry);
}

Conv load_linear(const Scope& scope, int64_t in, int64_t out, int spatial_dims, bool bias) {
  WeightSource w = scope.weight("weight", {out, in});
  Shape conv_shape = {out, in};
  conv_shape.resize(static_cast<size_t>(2 + spatial_dims), 1);
  Tensor b = bias ? scope.param("bias", {out}) : Tensor();
  return Conv(w.reshape(conv_shape), std::move(b), ConvGeometry::uniform(spatial_dims, 1, 0));
}

UpsampleConv load_upsample_conv(const Scope& scope, int64_t in, int64_t out, int spatial_dims,
                                std::array<bool, 3> upsampled) {
  Shape shape = {out, in};
  shape.resize(static_cast<size_t>(2 + spatial_dims), 3);
  return UpsampleConv(scope.weight("weight", shape), scope.param("bias", {out}), spatial_dims,
                      upsampled);
}

GroupNorm GroupNorm::load(const Scope& scope, int64_t channels, int64_t groups, float eps) {
  if (groups < 1 || channels % groups != 0)
    fail(scope.prefix(), ": ", groups, " groups do not divide ", channels, " channels");
  return {scope.param("weight", {channels}), scope.param("bias", {channels}), groups, eps};
}

Tensor take_for_update(Tensor x) {
  return x.storage_unique() ? x : x.clone();
}

}  // namespace vvae
