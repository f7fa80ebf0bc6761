#pragma once
// Weights bind by name. Modules ask a Scope for their parameters by the checkpoint key they
// carry upstream ("decoder.up.3.block.2.norm1.weight"); the WeightStore hands out tensors from a
// checkpoint (or random ones, or shape-only placeholders) and, once the model is built, reports
// every missing or mis-shaped tensor in one error and every unused one as a warning.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/weight_source.hpp"
#include "vvae/model.hpp"
#include "vvae/tensor.hpp"

namespace vvae {

class SafetensorsFile;

class WeightStore {
 public:
  // Checkpoint tensors under model names: `renames` maps a model name to the checkpoint key it
  // is stored under (names absent from it are used as they are).
  static WeightStore from_checkpoint(std::shared_ptr<const SafetensorsFile> file,
                                     const std::map<std::string, std::string>& renames = {});
  // Deterministic random weights (for full-size tests and benchmarks): convolution and linear
  // weights ~ N(0, 1/fan_in), biases ~ U(-0.1, 0.1), norm weights ~ U(0.7, 1.3).
  static WeightStore random(uint64_t seed);
  // Placeholders without data: enough to build a model, count parameters and plan a run.
  static WeightStore shapes_only();

  // A weight a kernel packs (convolutions, linear layers): read from the checkpoint when packed.
  WeightSource weight(const std::string& name, const Shape& shape);
  // A parameter used as it is (norms, biases): float32 values, converted now if stored otherwise.
  Tensor take(const std::string& name, const Shape& shape);

  // Every parameter the model asked for, in order.
  const std::vector<ParameterInfo>& requested() const { return requested_; }
  // The random tensors handed out (for saving random weights).
  const std::vector<std::pair<std::string, Tensor>>& taken() const { return taken_; }
  // Throws one Error listing all missing and mis-shaped tensors (and those holding NaN or
  // infinity, which would decode to garbage); returns the unexpected ones
  // (checkpoint tensors nobody asked for), or throws on them too when `strict`.
  std::vector<std::string> finish(bool strict, const std::string& model_name) const;

 private:
  enum class Mode { kCheckpoint, kRandom, kShapesOnly };
  explicit WeightStore(Mode mode) : mode_(mode) {}

  Mode mode_;
  uint64_t seed_ = 0;
  std::shared_ptr<const SafetensorsFile> file_;
  std::map<std::string, std::string> keys_;  // model name -> checkpoint key
  std::vector<ParameterInfo> requested_;
  std::vector<std::pair<std::string, Tensor>> taken_;
  std::vector<std::string> missing_;
  std::vector<std::string> misshaped_;
  std::vector<std::string> non_finite_;  // checkpoint tensors holding NaN or infinity
  int64_t parameter_count_ = 0;
};

// A position in the module tree: Scope(store, "decoder")["up"][3]["block"][2].
class Scope {
 public:
  Scope(WeightStore& store, std::string prefix = "") : store_(&store), prefix_(std::move(prefix)) {}

  Scope operator[](const std::string& child) const { return Scope(*store_, join(child)); }
  Scope operator[](int64_t index) const { return (*this)[std::to_string(index)]; }
  Tensor param(const std::string& name, const Shape& shape) const {
    return store_->take(join(name), shape);
  }
  WeightSource weight(const std::string& name, const Shape& shape) const {
    return store_->weight(join(name), shape);
  }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string join(const std::string& child) const {
    return prefix_.empty() ? child : prefix_ + "." + child;
  }
  WeightStore* store_;
  std::string prefix_;
};

}  // namespace vvae
