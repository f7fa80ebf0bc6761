#include "io/safetensors.hpp"
#include "models/ae2d.hpp"
#include "models/dcae.hpp"
#include "models/family.hpp"
#include "models/hunyuan.hpp"
#include "vvae/error.hpp"

namespace vvae {

void apply_tiling_options(Json& args, const TilingOptions& t, const TilingKeys& keys) {
  if (t.disable && (t.tile_size || t.tile_frames || t.overlap))
    fail("--no-tiling cannot be combined with --tile-size, --tile-frames or --tile-overlap");
  if (t.no_spatial && t.tile_size) fail("--no-spatial-tiling cannot be combined with --tile-size");
  if (t.no_temporal && t.tile_frames)
    fail("--no-temporal-tiling cannot be combined with --tile-frames");
  if (t.disable || t.no_spatial) args[keys.spatial_on] = false;
  if (t.disable || t.no_temporal) args[keys.temporal_on] = false;
  if (t.tile_size) {
    args[keys.tile_size] = *t.tile_size;
    args[keys.spatial_on] = true;
  }
  if (t.tile_frames) {
    args[keys.tile_frames] = *t.tile_frames;
    args[keys.temporal_on] = true;
  }
  if (t.overlap) args[keys.overlap] = *t.overlap;
}

const std::vector<Family>& families() {
  static const std::vector<Family> all = {ae2d_family(), hunyuan_family(), dcae_family()};
  return all;
}

const Family& find_family(const std::string& name) {
  std::string known;
  for (const Family& f : families()) {
    if (f.name == name) return f;
    for (const auto& alias : f.aliases)
      if (alias == name) return f;
    known += (known.empty() ? "" : ", ") + f.name;
  }
  fail("unknown model family '", name, "' (known: ", known, ")");
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = [] {
    std::vector<Preset> out;
    for (auto&& p : ae2d_presets()) out.push_back(std::move(p));
    for (auto&& p : hunyuan_presets()) out.push_back(std::move(p));
    for (auto&& p : dcae_presets()) out.push_back(std::move(p));
    return out;
  }();
  return all;
}

const Preset* find_preset(const std::string& name) {
  for (const Preset& p : presets())
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<ParameterInfo> write_random_checkpoint(const Preset& preset, const std::string& path,
                                                   uint64_t seed) {
  WeightStore store = WeightStore::random(seed);
  ModelInfo info;
  find_family(preset.family).build(preset.args, store, info);
  std::vector<NamedTensor> tensors;
  for (const auto& [name, tensor] : store.taken()) tensors.push_back({name, tensor});
  save_safetensors(path, tensors, {{"vvae_random_weights_seed", std::to_string(seed)}});
  return store.requested();
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : presets()) names.push_back(p.name);
  return names;
}

}  // namespace vvae
