#pragma once
// A model family: how to build its codec (models/codec.hpp) from a config and weights, and what
// the engine must know about it besides. Families register in models/registry.cpp, one line each.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/config.hpp"
#include "models/codec.hpp"
#include "models/weights.hpp"
#include "vvae/model.hpp"

namespace vvae {

// Throws unless `shape` is a (B, C, T, H, W) clip (or latent) with `channels` channels and no
// empty dimension; `what` names it in the message ("input", "latent").
void check_clip_shape(const Shape& shape, int64_t channels, const char* what);

// The model_args keys a tiled family reads its tiling from; the temporal ones are empty for a
// family that codes frame by frame (it has no temporal tiles).
struct TilingKeys {
  std::string spatial_on{};   // e.g. "use_spatial_tiling"
  std::string temporal_on{};  // "use_temporal_tiling"
  std::string tile_size{};    // "sample_size" (pixels)
  std::string tile_frames{};  // "sample_tsize"
  std::string overlap{};      // "tile_overlap_factor"
};

struct Preset {
  std::string name;
  std::string family;
  std::string description;
  Json args;
};

struct Family {
  std::string name{};                  // "ae2d"
  std::vector<std::string> aliases{};  // upstream registry names that mean the same family
  bool strict_loading = false;         // upstream loads this family with strict=True
  // Builds the codec from model_args (validated with ArgReader, unknown keys refused), binding
  // its weights from `weights`.
  std::unique_ptr<Codec> (*build)(const Json& args, WeightStore& weights) = nullptr;
  // Model name -> checkpoint key, for checkpoints saved under another naming; unset: none.
  std::map<std::string, std::string> (*checkpoint_renames)(const std::vector<std::string>& keys) =
      nullptr;
  // diffusers: the class whose model folders this family loads (config.json's `_class_name`)
  // and how that config (the class's constructor arguments) becomes model_args, refusing what
  // the family does not implement; unset for a family without a diffusers class.
  std::string diffusers_class{};
  Json (*from_diffusers)(const Json& config) = nullptr;
  // Where the tiling options (--tile-size, ...) go in model_args; unset for a family that does
  // not tile, which refuses them.
  std::optional<TilingKeys> tiling_keys{};
  // The tilings (both directions) model_args set, as the family's build derives them; set with
  // tiling_keys.
  TilingPair (*tiling)(const Json& args) = nullptr;
  // Whether upstream tiles this family too; false: the tiles are vvae's own (the 2D AE's),
  // which the family's config leaves off and which messages name as vvae-only.
  bool upstream_tiles = true;
  std::vector<Preset> presets{};
};

const std::vector<Family>& families();
const Family& find_family(const std::string& name);  // by name or alias; throws if unknown

// Writes the tiling overrides into `family`'s model_args keys: a size turns its tiling on, the
// --no-* flags turn it off, and contradictory combinations are refused.
void apply_tiling_options(Json& args, const TilingOptions& tiling, const Family& family);

// A model config from config.json's JSON: vvae's ({"family", "model_args"}) or a diffusers
// model's ({"_class_name": "AutoencoderKL", ...}), translated by its family.
ModelConfig model_config_from_json(const Json& config, const std::string& source);

const std::vector<Preset>& presets();  // every family's, in registration order
const Preset* find_preset(const std::string& name);

// Builds `preset` with WeightStore::random(seed) weights and writes them, under the upstream key
// names, to `path` (for full-size tests and benchmarks). Returns the parameter list.
std::vector<ParameterInfo> write_random_checkpoint(const Preset& preset, const std::string& path,
                                                   uint64_t seed);

}  // namespace vvae
