#include "models/weights.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "core/file_pages.hpp"
#include "core/random.hpp"
#include "core/threads.hpp"
#include "vvae/error.hpp"
#include "vvae/limits.hpp"
#include "vvae/safetensors.hpp"

namespace vvae {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A Linear [O, I] weight stored for a 1x1 convolution [O, I, 1, ...] (or the reverse) holds the
// same numbers in the same order; any other difference in shape is a mismatch.
bool linear_as_pointwise(const Shape& a, const Shape& b) {
  const auto pointwise_of = [](const Shape& linear, const Shape& conv) {
    if (linear.size() != 2 || conv.size() < 3 || conv[0] != linear[0] || conv[1] != linear[1])
      return false;
    return std::all_of(conv.begin() + 2, conv.end(), [](int64_t d) { return d == 1; });
  };
  return pointwise_of(a, b) || pointwise_of(b, a);
}

// FNV-1a: a stable hash, so random weights are the same on every platform.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

Tensor random_tensor(uint64_t seed, const std::string& name, const Shape& shape) {
  const uint64_t stream = fnv1a(name);
  Tensor t = Tensor::empty(shape);
  float* p = t.data();
  const bool matrix = shape.size() >= 2, bias = ends_with(name, "bias");
  const float std = matrix ? 1.0f / std::sqrt(static_cast<float>(t.numel() / shape[0])) : 0.0f;
  parallel_for(t.numel(), 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const uint64_t index = static_cast<uint64_t>(i);
      if (matrix) {
        p[i] = std * normal_at(seed, index, stream);
      } else {
        const float u = uniform_at(seed, index, stream);
        p[i] = bias ? -0.1f + 0.2f * u : 0.7f + 0.6f * u;
      }
    }
  });
  return t;
}

}  // namespace

WeightStore WeightStore::from_checkpoint(std::shared_ptr<const SafetensorsFile> file,
                                         const std::map<std::string, std::string>& renames) {
  WeightStore store(Mode::kCheckpoint);
  std::set<std::string> renamed_keys;
  for (const auto& [model_name, key] : renames) {
    store.keys_[model_name] = key;
    renamed_keys.insert(key);
  }
  for (const auto& entry : file->entries())
    if (!renamed_keys.count(entry.name)) store.keys_.emplace(entry.name, entry.name);
  store.file_ = std::move(file);
  return store;
}

WeightStore WeightStore::random(uint64_t seed) {
  WeightStore store(Mode::kRandom);
  store.seed_ = seed;
  return store;
}

WeightStore WeightStore::shapes_only() {
  return WeightStore(Mode::kShapesOnly);
}

WeightSource WeightStore::weight(const std::string& name, const Shape& shape) {
  parameter_count_ += limits::checked_numel(shape, "parameter " + name);
  if (parameter_count_ > limits::kMaxParameters)
    fail("the model has more than ", limits::kMaxParameters,
         " parameters (vvae's limit); check the config's widths and depths");
  requested_.push_back({name, shape});
  switch (mode_) {
    case Mode::kShapesOnly:
      return Tensor::borrow(shape, nullptr, nullptr);
    case Mode::kRandom: {
      Tensor t = random_tensor(seed_, name, shape);
      taken_.emplace_back(name, t);
      return t;
    }
    case Mode::kCheckpoint:
      break;
  }
  auto it = keys_.find(name);
  if (it == keys_.end()) {
    missing_.push_back(name + " " + to_string(shape));
    return Tensor::borrow(shape, nullptr, nullptr);
  }
  const std::string key = it->second;
  const SafetensorsEntry* entry = file_->find(key);
  if (entry->shape != shape && !linear_as_pointwise(entry->shape, shape)) {
    misshaped_.push_back(cat(key, " is ", to_string(entry->shape), ", needs ", to_string(shape)));
    return Tensor::borrow(shape, nullptr, nullptr);
  }
  // The check below reads every value: the pages are handed back after it, or a run that uses
  // half the model (an encode) would keep the other half's checkpoint resident. A float32
  // tensor is a view of the mapping, read again from the file (the page cache) when its layer
  // packs it; any other type is converted again then, into a buffer freed once packed, so no
  // float32 copy stays.
  const auto check_finite = [&](const Tensor& t) {
    if (const int64_t bad = count_non_finite(t); bad > 0)
      non_finite_.push_back(cat(key, " (", bad, " of ", t.numel(), ")"));
  };
  if (entry->dtype == "F32") {
    const Tensor t = file_->load(key).reshape(shape);
    check_finite(t);
    release_file_pages(t.data(), t.bytes());
    return t;
  }
  std::shared_ptr<const SafetensorsFile> file = file_;
  const WeightSource::Convert convert = [file, key, shape] {
    Tensor t = file->load(key).reshape(shape);
    file->release_pages(key);
    return t;
  };
  check_finite(convert());
  return WeightSource(shape, convert);
}

Tensor WeightStore::take(const std::string& name, const Shape& shape) {
  return weight(name, shape).tensor();
}

std::vector<std::string> WeightStore::finish(bool strict, const std::string& model_name) const {
  if (mode_ != Mode::kCheckpoint) return {};
  std::set<std::string> used;
  for (const auto& p : requested_) {
    auto it = keys_.find(p.name);
    if (it != keys_.end()) used.insert(it->second);
  }
  std::vector<std::string> unexpected;
  for (const auto& entry : file_->entries())
    if (!used.count(entry.name)) unexpected.push_back(entry.name);

  if (!missing_.empty() || !misshaped_.empty() || !non_finite_.empty() ||
      (strict && !unexpected.empty())) {
    std::ostringstream msg;
    msg << "checkpoint '" << file_->path() << "' does not fit the " << model_name << " model:";
    const auto list = [&](const char* what, const std::vector<std::string>& items) {
      if (items.empty()) return;
      msg << ' ' << items.size() << ' ' << what << " (";
      for (size_t i = 0; i < items.size(); ++i) msg << (i ? ", " : "") << items[i];
      msg << ')';
    };
    list("missing", missing_);
    list("wrongly shaped", misshaped_);
    list("holding NaN or infinite values", non_finite_);
    if (strict) list("unexpected", unexpected);
    throw Error(msg.str());
  }
  return unexpected;
}

}  // namespace vvae
