#include "vvae/latent.hpp"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "vvae/error.hpp"

namespace vvae {
namespace {

std::string hw(int64_t h, int64_t w) {
  return cat(h, "x", w);
}

}  // namespace

std::string config_hash(const ModelInfo& info) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : info.family + "\n" + info.config_json) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Metadata model_metadata(const ModelInfo& info) {
  Metadata m = {{"vvae_version", version()}, {"family", info.family}, {"layout", "B,C,T,H,W"}};
  if (!info.preset.empty()) m["preset"] = info.preset;
  m["model_args"] = info.config_json;
  m["config_hash"] = config_hash(info);
  const nlohmann::json args = nlohmann::json::parse(info.config_json, nullptr, false);
  if (args.is_object())
    for (const char* key : {"scale_factor", "shift_factor", "scaling_factor"})
      if (args.contains(key) && args[key].is_number()) m[key] = args[key].dump();
  return m;
}

void add_clip_metadata(Metadata& m, const Clip& clip) {
  m["source"] = clip.source;
  m["source_size"] = hw(clip.video.height, clip.video.width);
  if (clip.source_frames > 0) m["source_frames"] = std::to_string(clip.source_frames);
  if (clip.video.fps > 0) m["source_fps"] = format_fps(clip.video.fps);
  m["frames"] = std::to_string(clip.frames());
  m["size"] = hw(clip.height(), clip.width());
  m["frame_interval"] = std::to_string(clip.interval);
  std::string idx;
  for (int64_t i : clip.indices) {
    if (!idx.empty()) idx += ',';
    idx += std::to_string(i);
  }
  m["frame_indices"] = idx;
  if (clip.fps > 0) m["fps"] = format_fps(clip.fps);
  const ResizeCrop& g = clip.geometry;
  m["resize_crop"] = cat("scale ", hw(g.scaled_height, g.scaled_width), " crop ",
                         hw(g.height, g.width), " at ", g.top, ",", g.left);
  if (!clip.bucket.empty()) m["bucket"] = clip.bucket;
  std::string notes;
  for (const auto& n : clip.notes) {
    if (!notes.empty()) notes += "; ";
    notes += n;
  }
  if (!notes.empty()) m["notes"] = notes;
}

Metadata latent_metadata(const ModelInfo& info, const Shape& input, const EncodeOptions& encode,
                         const Clip* clip) {
  Metadata meta = model_metadata(info);
  if (clip != nullptr) add_clip_metadata(meta, *clip);
  meta["input_shape"] = to_string(input);
  meta["sampled"] = encode.sample ? "true" : "false";
  if (encode.sample) meta["seed"] = std::to_string(encode.seed);
  return meta;
}

double metadata_fps(const Metadata& meta) {
  const auto it = meta.find("fps");
  if (it == meta.end()) return 0;
  try {
    const double f = std::stod(it->second);
    return std::isfinite(f) && f > 0 ? f : 0;
  } catch (...) {
    return 0;
  }
}

std::string model_mismatch(const Metadata& meta, const ModelInfo& info) {
  const auto fam = meta.find("family");
  if (fam != meta.end() && fam->second != info.family)
    return cat("the latent was encoded by a '", fam->second, "' model; decoding with a '",
               info.family, "' model");
  const auto hash = meta.find("config_hash");
  if (hash != meta.end() && hash->second != config_hash(info)) {
    const auto preset = meta.find("preset");
    return cat("the latent was encoded with another config (",
               preset != meta.end() ? "preset " + preset->second + ", " : "", hash->second,
               ") than this model's (", config_hash(info), ")");
  }
  return "";
}

void write_latent_file(const std::string& path, const EncodeResult& latent,
                       const Metadata& metadata) {
  std::vector<NamedTensor> tensors = {{"z", latent.z}};
  if (latent.mean.defined()) tensors.push_back({"mean", latent.mean});
  if (latent.logvar.defined()) tensors.push_back({"logvar", latent.logvar});
  save_safetensors(path, tensors, metadata);
}

LatentFile read_latent_file(const std::string& path, const std::string& name) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  LatentFile latent;
  latent.z = read_named_tensor(file, name, "z");
  if (file.contains("mean")) latent.mean = file.load("mean");
  if (file.contains("logvar")) latent.logvar = file.load("logvar");
  latent.metadata = file.metadata();
  return latent;
}

}  // namespace vvae
