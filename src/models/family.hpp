#pragma once
// What every model family provides to the engine: a model that encodes and decodes
// (B, C, T, H, W) tensors, and a Family record that builds it from config and weights.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/config.hpp"
#include "models/weights.hpp"
#include "vvae/model.hpp"

namespace vvae {

class VaeModel {
 public:
  virtual ~VaeModel() = default;
  virtual EncodeResult encode(const Tensor& x, const EncodeOptions& options) const = 0;
  virtual Tensor decode(const Tensor& z) const = 0;
  // Validates an input shape and returns the output shape, or throws an Error saying why the
  // shape is invalid and which shapes are.
  virtual Shape encoded_shape(const Shape& x) const = 0;
  virtual Shape decoded_shape(const Shape& z) const = 0;
  // How a run of this shape would be carried out (tiles and the like), one line each.
  virtual std::vector<std::string> encode_notes(const Shape&) const { return {}; }
  virtual std::vector<std::string> decode_notes(const Shape&) const { return {}; }
};

struct Family {
  std::string name;                  // "ae2d"
  std::vector<std::string> aliases;  // upstream registry names that mean the same family
  bool strict_loading = false;       // upstream loads this family with strict=True
  // Builds the model from validated model_args, binding weights; fills the family's fields
  // of `info` (channels, ratios, variational).
  std::unique_ptr<VaeModel> (*build)(const Json& args, WeightStore& weights, ModelInfo& info);
  // Model name -> checkpoint key, for checkpoints saved under another naming (or empty).
  std::map<std::string, std::string> (*checkpoint_renames)(const std::vector<std::string>& keys);
  // Writes the CLI's tiling overrides into this family's model_args keys.
  void (*apply_tiling)(Json& args, const TilingOptions& tiling);
};

// The model_args keys a tiled family reads its tiling from.
struct TilingKeys {
  const char* spatial_on;   // e.g. "use_spatial_tiling"
  const char* temporal_on;  // "use_temporal_tiling"
  const char* tile_size;    // "sample_size" (pixels)
  const char* tile_frames;  // "sample_tsize"
  const char* overlap;      // "tile_overlap_factor"
};

// Writes the CLI's tiling overrides into a family's keys: a size turns its tiling on, the
// --no-* flags turn it off, and contradictory combinations are refused.
void apply_tiling_options(Json& args, const TilingOptions& tiling, const TilingKeys& keys);

const std::vector<Family>& families();
const Family& find_family(const std::string& name);  // by name or alias; throws if unknown

struct Preset {
  std::string name;
  std::string family;
  std::string description;
  Json args;
};

const std::vector<Preset>& presets();
const Preset* find_preset(const std::string& name);

// Builds `preset` with WeightStore::random(seed) weights and writes them, under the upstream key
// names, to `path` (for full-size tests and benchmarks). Returns the parameter list.
std::vector<ParameterInfo> write_random_checkpoint(const Preset& preset, const std::string& path,
                                                   uint64_t seed);

}  // namespace vvae
