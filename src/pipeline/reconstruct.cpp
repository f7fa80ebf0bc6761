#include "pipeline/reconstruct.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "pipeline/visuals.hpp"
#include "vvae/error.hpp"

namespace vvae {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr double kDefaultFps = 16;  // Open-Sora's save fps when nothing says otherwise

std::string join(const fs::path& a, const std::string& b) {
  return (a / b).string();
}

// JSON numbers must be finite; metrics are (PSNR is capped), but be safe.
double finite(double v) {
  return std::isfinite(v) ? v : 0.0;
}

std::string marker_path(const ManifestEntry& e, const ReconstructOptions& o) {
  return join(fs::path(o.out_dir) / "done", e.name + ".json");
}

// Every file name this clip may write, relative to the output folder.
std::vector<std::string> possible_outputs(const ManifestEntry& e) {
  const std::string n = e.name;
  return {"orig/" + n + "_orig.mp4",
          "orig/" + n + "_orig.png",
          "recn/" + n + "_recn.mp4",
          "recn/" + n + "_recn.png",
          "compare/" + n + "_compare.mp4",
          "compare/" + n + "_compare.png",
          "compare/" + n + "_psnr.png",
          "latents/" + n + ".latent.safetensors",
          "done/" + n + ".json"};
}

// Writes frames as NAME.mp4, or NAME.png for a single frame; returns the relative path.
std::string write_frames(const ReconstructOptions& o, const std::string& folder,
                         const std::string& name, const RgbFrames& frames, double fps) {
  fs::create_directories(fs::path(o.out_dir) / folder);
  const std::string rel = folder + "/" + name + (frames.frames == 1 ? ".png" : ".mp4");
  const std::string path = join(o.out_dir, rel);
  if (frames.frames == 1)
    write_png(path, frames.frame(0), frames.height, frames.width);
  else
    write_video(path, frames, {fps, o.crf});
  return rel;
}

Json result_json(const ClipResult& r) {
  Json j = {{"row", r.entry.row},
            {"path", r.entry.path},
            {"name", r.entry.name},
            {"status", r.ok ? "ok" : "failed"}};
  if (!r.ok) {
    j["error"] = r.error;
    return j;
  }
  j["resumed"] = r.resumed;
  j["frames"] = r.frames;
  j["size"] = {r.height, r.width};
  j["fps"] = finite(r.fps);
  j["psnr"] = finite(r.psnr);
  j["ssim"] = finite(r.ssim);
  j["seconds"] = finite(r.seconds);
  j["latent_shape"] = r.latent_shape;
  j["outputs"] = r.outputs;
  if (!r.notes.empty()) j["notes"] = r.notes;
  if (!r.warnings.empty()) j["warnings"] = r.warnings;
  return j;
}

}  // namespace

std::string run_key(const ModelInfo& info, const ReconstructOptions& o) {
  const Json key = {{"config", config_hash(info)},
                    {"model", o.model_label},
                    {"precision", o.compute.precision == Precision::kBf16 ? "bf16" : "fp32"},
                    {"conv_algo", conv_algorithm_name(o.compute.conv_algorithm)},
                    {"num_frames", o.clip.frames.num_frames},
                    {"frame_interval", o.clip.frames.frame_interval},
                    {"fps_max", o.clip.frames.fps_max},
                    {"resolution", o.clip.resolution},
                    {"size", {o.clip.height, o.clip.width}},
                    {"sample", o.encode.sample},
                    {"seed", o.encode.sample ? o.encode.seed : 0},
                    {"fps", o.fps},
                    {"crf", o.crf},
                    {"compare", o.compare},
                    {"latents", o.latents}};
  return key.dump();
}

void remove_stale_temporaries(const ManifestEntry& e, const ReconstructOptions& o) {
  for (const std::string& rel : possible_outputs(e)) {
    const fs::path p = fs::path(o.out_dir) / rel;
    std::error_code ec;
    if (!fs::is_directory(p.parent_path(), ec)) continue;
    const std::string prefix = p.filename().string() + ".tmp-";
    for (const auto& f : fs::directory_iterator(p.parent_path(), ec))
      if (f.path().filename().string().rfind(prefix, 0) == 0) fs::remove(f.path(), ec);
  }
}

ClipResult reconstruct_clip(const Model& model, const ManifestEntry& entry,
                            const ReconstructOptions& o, const std::string& key) {
  const auto start = std::chrono::steady_clock::now();
  ClipResult r;
  r.entry = entry;
  remove_stale_temporaries(entry, o);
  // A marker from an earlier run no longer describes what is about to be written.
  std::error_code ec;
  fs::remove(marker_path(entry, o), ec);

  const ModelInfo& info = model.info();
  Clip clip = is_tensor_file(entry.path) ? clip_from_tensor(entry.path)
                                         : load_clip(entry.path, o.clip, shape_rules(model));
  if (is_tensor_file(entry.path) && o.clip.any_set())
    clip.notes.push_back("a tensor input: frame and size options do not apply");
  r.notes = clip.notes;
  r.warnings = clip.warnings;

  const EncodeResult enc = model.encode(clip.x, o.encode);
  const Tensor x_rec = model.decode(enc.z);
  if (x_rec.shape() != clip.x.shape())
    fail("the reconstruction is ", to_string(x_rec.shape()), " for an input of ",
         to_string(clip.x.shape()));
  r.moments = latent_moments(enc.z.data(), enc.z.numel());
  r.latent_shape = enc.z.shape();

  const RgbFrames orig = tensor_to_rgb(clip.x), recn = tensor_to_rgb(x_rec);
  const ClipMetrics m = clip_metrics(orig, recn);
  r.frames = orig.frames;
  r.height = orig.height;
  r.width = orig.width;
  r.fps = o.fps > 0 ? o.fps : clip.fps > 0 ? clip.fps : kDefaultFps;
  r.psnr = m.mean_psnr;
  r.ssim = m.mean_ssim;
  r.psnr_frames = m.psnr;
  r.ssim_frames = m.ssim;

  const std::string& n = entry.name;
  r.outputs.push_back(write_frames(o, "orig", n + "_orig", orig, r.fps));
  r.outputs.push_back(write_frames(o, "recn", n + "_recn", recn, r.fps));
  if (o.compare) {
    r.outputs.push_back(
        write_frames(o, "compare", n + "_compare", side_by_side(orig, recn), r.fps));
    const RgbFrames plot = psnr_plot(m.psnr);
    r.outputs.push_back("compare/" + n + "_psnr.png");
    write_png(join(o.out_dir, r.outputs.back()), plot.frame(0), plot.height, plot.width);
  }
  if (o.latents) {
    fs::create_directories(fs::path(o.out_dir) / "latents");
    Metadata meta = model_metadata(info);
    add_clip_metadata(meta, clip);
    meta["input_shape"] = to_string(clip.x.shape());
    meta["sampled"] = o.encode.sample ? "true" : "false";
    if (o.encode.sample) meta["seed"] = std::to_string(o.encode.seed);
    if (o.fps > 0) meta["fps"] = format_fps(o.fps);
    std::vector<NamedTensor> tensors = {{"z", enc.z}};
    if (enc.mean.defined() && enc.mean.numel() > 0) {
      tensors.push_back({"mean", enc.mean});
      tensors.push_back({"logvar", enc.logvar});
    }
    r.outputs.push_back("latents/" + n + ".latent.safetensors");
    save_safetensors(join(o.out_dir, r.outputs.back()), tensors, meta);
  }
  r.ok = true;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // The marker goes last: it exists only when every output above is in place.
  Json marker = result_json(r);
  marker["key"] = key;
  marker["psnr_frames"] = r.psnr_frames;
  marker["ssim_frames"] = r.ssim_frames;
  marker["latent_moments"] = {{"mean", finite(r.moments.mean)},
                              {"mean_sq", finite(r.moments.mean_sq)}};
  Json sizes = Json::object();
  for (const auto& rel : r.outputs) sizes[rel] = fs::file_size(fs::path(o.out_dir) / rel);
  marker["output_bytes"] = sizes;
  fs::create_directories(fs::path(o.out_dir) / "done");
  const std::string text = marker.dump(1);
  AtomicFile out(marker_path(entry, o));
  out.write(text.data(), text.size());
  out.commit();
  return r;
}

std::optional<ClipResult> completed_clip(const ManifestEntry& entry, const ReconstructOptions& o,
                                         const std::string& key) {
  std::ifstream in(marker_path(entry, o));
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  const Json j = Json::parse(text.str(), nullptr, false);
  try {
    if (!j.is_object() || j.value("key", "") != key || j.value("path", "") != entry.path ||
        j.value("status", "") != "ok")
      return std::nullopt;
    ClipResult r;
    r.entry = entry;
    r.ok = true;
    r.resumed = true;
    r.frames = j.at("frames").get<int64_t>();
    r.height = j.at("size").at(0).get<int64_t>();
    r.width = j.at("size").at(1).get<int64_t>();
    r.fps = j.at("fps").get<double>();
    r.psnr = j.at("psnr").get<double>();
    r.ssim = j.at("ssim").get<double>();
    r.seconds = j.at("seconds").get<double>();
    r.psnr_frames = j.at("psnr_frames").get<std::vector<double>>();
    r.ssim_frames = j.at("ssim_frames").get<std::vector<double>>();
    r.latent_shape = j.at("latent_shape").get<Shape>();
    r.moments.mean = j.at("latent_moments").at("mean").get<double>();
    r.moments.mean_sq = j.at("latent_moments").at("mean_sq").get<double>();
    r.outputs = j.at("outputs").get<std::vector<std::string>>();
    if (j.contains("notes")) r.notes = j["notes"].get<std::vector<std::string>>();
    if (j.contains("warnings")) r.warnings = j["warnings"].get<std::vector<std::string>>();
    const Json& sizes = j.at("output_bytes");
    for (const auto& rel : r.outputs) {
      std::error_code ec;
      const auto bytes = fs::file_size(fs::path(o.out_dir) / rel, ec);
      if (ec || bytes != sizes.at(rel).get<uintmax_t>()) return std::nullopt;
    }
    return r;
  } catch (const std::exception&) {
    return std::nullopt;  // a marker of another format: redo the clip
  }
}

RunningLatentStats latent_stats(const std::vector<ClipResult>& results) {
  std::vector<const ClipResult*> ok;
  for (const auto& r : results)
    if (r.ok) ok.push_back(&r);
  std::stable_sort(ok.begin(), ok.end(), [](const ClipResult* a, const ClipResult* b) {
    return a->entry.row < b->entry.row;
  });
  RunningLatentStats stats;
  for (const ClipResult* r : ok) stats.add(r->moments);
  return stats;
}

std::string summary_json(const std::vector<ClipResult>& results, const ModelInfo& info,
                         const ReconstructOptions& o, const std::string& shard,
                         double wall_seconds) {
  Json clips = Json::array();
  int64_t ok = 0, failed = 0, resumed = 0, frames = 0;
  double psnr = 0, ssim = 0, seconds = 0;
  for (const auto& r : results) {
    clips.push_back(result_json(r));
    if (!r.ok) {
      ++failed;
      continue;
    }
    ++ok;
    resumed += r.resumed ? 1 : 0;
    frames += r.frames;
    psnr += r.psnr;
    ssim += r.ssim;
    seconds += r.seconds;
  }
  const RunningLatentStats stats = latent_stats(results);
  Json model = {{"family", info.family}, {"config_hash", config_hash(info)}};
  if (!info.preset.empty()) model["preset"] = info.preset;
  if (!o.model_label.empty()) model["model"] = o.model_label;
  Json summary = {
      {"vvae_version", version()},
      {"model", model},
      {"shard", shard},
      {"options", Json::parse(run_key(info, o))},
      {"clips", clips},
      {"totals",
       {{"clips", static_cast<int64_t>(results.size())},
        {"ok", ok},
        {"failed", failed},
        {"resumed", resumed},
        {"frames", frames},
        {"mean_psnr", ok ? finite(psnr / static_cast<double>(ok)) : 0.0},
        {"mean_ssim", ok ? finite(ssim / static_cast<double>(ok)) : 0.0},
        {"clip_seconds", finite(seconds)},
        {"wall_seconds", finite(wall_seconds)}}},
      {"latent",
       {{"mean", finite(stats.mean())},
        {"std", finite(stats.std())},
        {"clips", stats.count()},
        {"formula", "scripts/vae/stats.py running mean/std over z, one clip per batch"}}}};
  return summary.dump(1) + "\n";
}

}  // namespace vvae
