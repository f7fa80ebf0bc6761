#include "models/ae2d/ae2d.hpp"
#include "models/dcae/dcae.hpp"
#include "models/family.hpp"
#include "models/hunyuan/hunyuan.hpp"
#include "vvae/error.hpp"
#include "vvae/safetensors.hpp"

namespace vvae {

void check_clip_shape(const Shape& s, int64_t channels, const char* what) {
  if (s.size() != 5) fail("the ", what, " must be (B, C, T, H, W), got ", to_string(s));
  if (s[1] != channels)
    fail("the ", what, " has ", s[1], " channels, the model expects ", channels, " (shape ",
         to_string(s), ")");
  for (int64_t d : s)
    if (d < 1) fail("the ", what, " ", to_string(s), " has an empty dimension");
}

void apply_tiling_options(Json& args, const TilingOptions& t, const Family& family) {
  if (t.disable && (t.tile_size || t.tile_frames || t.overlap))
    fail("--no-tiling cannot be combined with --tile-size, --tile-frames or --tile-overlap");
  if (t.no_spatial && t.tile_size) fail("--no-spatial-tiling cannot be combined with --tile-size");
  if (t.no_temporal && t.tile_frames)
    fail("--no-temporal-tiling cannot be combined with --tile-frames");
  if (!family.tiling_keys) {
    if (t.tile_size || t.tile_frames || t.overlap)
      fail("the ", family.name, " family does not tile (nor does upstream): --tile-size, ",
           "--tile-frames and --tile-overlap do not apply");
    return;
  }
  const TilingKeys& keys = *family.tiling_keys;
  if (keys.tile_frames.empty() && t.tile_frames)
    fail("the ", family.name, " family codes frame by frame and has no temporal tiles: ",
         "--tile-frames does not apply");
  if (t.disable || t.no_spatial) args[keys.spatial_on] = false;
  if ((t.disable || t.no_temporal) && !keys.temporal_on.empty()) args[keys.temporal_on] = false;
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

// The families vvae knows: registering one is one line here (and its sources in CMakeLists.txt).
const std::vector<Family>& families() {
  static const std::vector<Family> all = {
      ae2d_family(),
      hunyuan_family(),
      dcae_family(),
  };
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

ModelConfig model_config_from_json(const Json& j, const std::string& source) {
  if (!j.contains("_class_name")) return vvae_model_config(j, source);
  if (!j["_class_name"].is_string()) fail("config '", source, "': \"_class_name\" is not a string");
  const std::string name = j["_class_name"].get<std::string>();
  std::string known;
  for (const Family& f : families()) {
    if (!f.from_diffusers) continue;
    if (f.diffusers_class == name) {
      ModelConfig config;
      config.family = f.name;
      config.source = source;
      config.args = f.from_diffusers(j);
      return config;
    }
    known += (known.empty() ? "" : ", ") + f.diffusers_class;
  }
  fail("config '", source, "' is a diffusers ", name, ", which vvae does not load (it loads ",
       known, ")");
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = [] {
    std::vector<Preset> out;
    for (const Family& f : families()) out.insert(out.end(), f.presets.begin(), f.presets.end());
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
  find_family(preset.family).build(preset.args, store);
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
