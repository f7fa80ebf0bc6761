#include "vvae/reconstruct.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/atomic_file.hpp"
#include "io/utf8.hpp"
#include "media/clip_source.hpp"
#include "media/file_lock.hpp"
#include "media/folders.hpp"
#include "media/visuals.hpp"
#include "vvae/error.hpp"
#include "vvae/files.hpp"
#include "vvae/latent.hpp"
#include "vvae/memory.hpp"
#include "vvae/safetensors.hpp"

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

std::string lock_path(const ManifestEntry& e, const ReconstructOptions& o) {
  return join(o.out_dir, "." + e.name + ".vvae-lock");
}

void make_subfolder(const ReconstructOptions& o, const std::string& folder) {
  make_real_folder(join(o.out_dir, folder), "output folder");
}

// Strings into JSON. Paths are bytes: when a field's strings are not all UTF-8, every one of
// them is stored escaped (escape_bytes) and the field is named in the record's "escaped" list,
// so a reader can restore the bytes exactly.
void put_text(Json& j, const std::string& field, const std::string& text) {
  if (is_utf8(text)) {
    j[field] = text;
    return;
  }
  j[field] = escape_bytes(text);
  j["escaped"].push_back(field);
}

bool texts_need_escaping(const std::vector<std::string>& texts) {
  return !std::all_of(texts.begin(), texts.end(), [](const std::string& t) { return is_utf8(t); });
}

void put_texts(Json& j, const std::string& field, const std::vector<std::string>& texts) {
  if (!texts_need_escaping(texts)) {
    j[field] = texts;
    return;
  }
  Json list = Json::array();
  for (const auto& t : texts) list.push_back(escape_bytes(t));
  j[field] = list;
  j["escaped"].push_back(field);
}

bool escaped(const Json& j, const std::string& field) {
  if (!j.contains("escaped") || !j["escaped"].is_array()) return false;
  for (const auto& f : j["escaped"])
    if (f.is_string() && f.get<std::string>() == field) return true;
  return false;
}

std::vector<std::string> get_texts(const Json& j, const std::string& field) {
  std::vector<std::string> texts = j.at(field).get<std::vector<std::string>>();
  if (escaped(j, field))
    for (auto& t : texts) t = unescape_bytes(t);
  return texts;
}

std::string get_text(const Json& j, const std::string& field) {
  const std::string text = j.at(field).get<std::string>();
  return escaped(j, field) ? unescape_bytes(text) : text;
}

// JSON text; anything the escaping above missed is replaced rather than fail the record.
std::string dump(const Json& j) {
  return j.dump(1, ' ', false, Json::error_handler_t::replace);
}

// A marker vvae wrote (a JSON object with a run key), as opposed to a user's file.
bool is_vvae_marker(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  const Json j = Json::parse(text.str(), nullptr, false);
  return j.is_object() && j.contains("key") && j.contains("status") && j.contains("path");
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

// One of a clip's frame outputs, NAME.mp4 (NAME.png for a one-frame clip), written as its frames
// come: the file appears under its name once finish() completes it.
class FramesOutput {
 public:
  FramesOutput(const ReconstructOptions& o, const std::string& folder, const std::string& name,
               int64_t frames, double fps)
      : options_(o), frames_(frames), fps_(fps) {
    make_subfolder(o, folder);
    rel_ = folder + "/" + name + (frames == 1 ? ".png" : ".mp4");
    path_ = join(o.out_dir, rel_);
  }

  void add(const RgbFrames& part) {
    if (written_ + part.frames > frames_)
      fail("internal: ", written_ + part.frames, " frames for ", rel_, " of ", frames_);
    if (frames_ == 1) {
      write_png(path_, part.frame(0), part.height, part.width);
    } else {
      if (!writer_)
        writer_.emplace(path_, part.height, part.width, VideoWriteOptions{fps_, options_.crf});
      for (int64_t t = 0; t < part.frames; ++t) writer_->write(part.frame(t));
    }
    written_ += part.frames;
  }

  // The relative path of the finished file.
  std::string finish() {
    if (written_ != frames_) fail("internal: ", written_, " of ", frames_, " frames for ", rel_);
    if (writer_) writer_->finish();
    return rel_;
  }

 private:
  const ReconstructOptions& options_;
  int64_t frames_ = 0;
  double fps_ = 0;
  std::string rel_, path_;
  std::optional<VideoWriter> writer_;
  int64_t written_ = 0;
};

// What a capped run (ReconstructOptions::max_memory) chose, or the plans' check without a cap.
struct ClipPlans {
  std::optional<TilingOptions> encode, decode;
  std::vector<std::string> notes;
};

// The plans of a clip's encode and decode, which write videos beside the model (`encode_io`,
// `decode_io`: what their video writers hold) under the cap, when there is one.
ClipPlans plan_clip(const Model& model, const Shape& clip, ClipIo io, int64_t max_memory,
                    int64_t encode_io, int64_t decode_io) {
  ClipPlans p;
  const std::string what = cat("reconstructing ", to_string(clip));
  if (max_memory <= 0) {
    // Refuse at once what cannot fit, rather than fail minutes into the run.
    const RunPlan encode = model.plan_encode(clip, std::nullopt, io);
    const RunPlan decode = model.plan_decode(encode.output, std::nullopt, io);
    check_memory_fits(
        std::max(encode.estimated_peak_bytes + encode_io,
                 decode.estimated_peak_bytes + decode_io + model.weights_not_yet_resident(true)),
        what);
    return p;
  }
  // The cap left for a run beside the video writers (and weights) that are resident meanwhile.
  const auto model_cap = [&](int64_t writers, int64_t weights) {
    if (max_memory - writers - weights <= 0)
      fail(what, ": the video writers", weights > 0 ? " and the encoder's weights" : "",
           " alone take ~", format_memory(writers + weights), ", above --max-memory ",
           format_memory(max_memory));
    return max_memory - writers - weights;
  };
  // The encode runs first: its weights are resident while the decode runs.
  const int64_t encoder_weights = model.weights_not_yet_resident(true);
  const FittedPlan encode = model.fit_encode(clip, model_cap(encode_io, 0), io);
  const FittedPlan decode =
      model.fit_decode(encode.plan.output, model_cap(decode_io, encoder_weights), io);
  check_memory_fits(std::max(encode.plan.estimated_peak_bytes + encode_io,
                             decode.plan.estimated_peak_bytes + decode_io + encoder_weights),
                    what);
  p.encode = encode.tiling;
  p.decode = decode.tiling;
  p.notes = {
      cat("encode (beside ~", format_memory(encode_io), " of video writers) ", encode.summary),
      cat("decode (beside ~", format_memory(decode_io), " of video writers",
          encoder_weights > 0 ? cat(" and ~", format_memory(encoder_weights), " of encoder weights")
                              : std::string(),
          ") ", decode.summary)};
  return p;
}

Json result_json(const ClipResult& r) {
  Json j = {{"row", r.entry.row}};
  put_text(j, "path", r.entry.path);
  put_text(j, "name", r.entry.name);
  j["status"] = r.ok ? "ok" : "failed";
  if (!r.ok) {
    put_text(j, "error", r.error);
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
  put_texts(j, "outputs", r.outputs);
  if (!r.notes.empty()) put_texts(j, "notes", r.notes);
  if (!r.warnings.empty()) put_texts(j, "warnings", r.warnings);
  return j;
}

}  // namespace

std::string run_key(const ModelInfo& info, const ReconstructOptions& o) {
  Json key = coding_settings_json(info, o.compute, o.clip, o.encode);
  key["model"] = utf8_or_escaped(o.model_label);
  key["fps"] = o.fps;
  key["crf"] = o.crf;
  key["compare"] = o.compare;
  key["latents"] = o.latents;
  // A cap may choose other tiles, which change the outputs (keys of uncapped runs stay as they
  // were).
  Json with_cap = key;
  if (o.max_memory > 0) with_cap["max_memory"] = o.max_memory;
  return with_cap.dump();
}

const std::vector<std::string>& output_subfolders() {
  static const std::vector<std::string> folders = {"orig", "recn", "compare", "latents", "done"};
  return folders;
}

void check_output_subfolders(const std::string& out_dir) {
  for (const std::string& folder : output_subfolders()) {
    const std::string path = join(out_dir, folder);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
    if (S_ISLNK(st.st_mode))
      fail("'", path, "' is a symbolic link: vvae writes only into real folders inside the ",
           "output folder (remove the link, or write to another output folder)");
    fail("'", path, "' is a file, not a folder: remove it, or write to another output folder");
  }
}

void remove_stale_temporaries(const ManifestEntry& e, const ReconstructOptions& o) {
  for (const std::string& rel : possible_outputs(e))
    remove_stale_temporaries_of((fs::path(o.out_dir) / rel).string());
}

ClipResult reconstruct_clip(const Model& model, const ManifestEntry& entry,
                            const ReconstructOptions& o, const std::string& key, bool wait) {
  const auto start = std::chrono::steady_clock::now();
  ClipResult r;
  r.entry = entry;
  // No output may replace an input (this clip or any other the run reads), whatever name it
  // goes by.
  InputFiles clip_input;
  clip_input.add(entry.path);
  for (const std::string& rel : possible_outputs(entry)) {
    o.inputs.check_output_file(join(o.out_dir, rel));
    clip_input.check_output_file(join(o.out_dir, rel));
  }
  // One run at a time per clip: the lock guards its outputs and their temporaries.
  std::optional<FileLock> lock = FileLock::try_lock(lock_path(entry, o));
  if (!lock) {
    if (!wait)
      throw ClipBusy(cat("another vvae run is writing clip '", entry.name, "' in '", o.out_dir,
                         "' (it holds ", lock_path(entry, o),
                         "): wait for it, or write to another folder"));
    lock.emplace(FileLock::lock(lock_path(entry, o)));
    // The run we waited for has just written this clip: its result is ours.
    if (auto done = completed_clip(entry, o, key)) return *done;
  }
  remove_stale_temporaries(entry, o);
  // A file in the marker's place that vvae did not write is left alone.
  const std::string marker_file = marker_path(entry, o);
  struct stat marker_stat {};
  const bool old_marker = ::lstat(marker_file.c_str(), &marker_stat) == 0;
  if (old_marker && (!S_ISREG(marker_stat.st_mode) || !is_vvae_marker(marker_file)))
    fail("'", marker_file, "' is not a marker vvae wrote: move it away to redo clip '", entry.name,
         "'");

  const ModelInfo& info = model.info();
  // A video is streamed: its frames are decoded as the encoder's tiles need them, and read again
  // beside the decoder's output, which is measured and written a part at a time.
  ClipSource source = open_clip_source(entry.path, o.clip, shape_rules(model));
  const Clip& clip = source.clip;
  const bool tensor_clip = source.whole();
  const Shape shape = source.shape();
  const FrameReader clip_frames = source.frames();
  r.notes = clip.notes;
  r.warnings = clip.warnings;
  // The writers of orig (during the encode), recn and compare (during the decode); a one-frame
  // clip is written as PNGs.
  const int64_t h = shape[3], w = shape[4];
  const bool videos = shape[2] > 1;
  const int64_t encode_io = videos ? video_writer_bytes(h, w) : 0;
  const int64_t decode_io =
      videos ? video_writer_bytes(h, w) + (o.compare ? video_writer_bytes(h, 3 * w) : 0) : 0;
  const ClipPlans plans = plan_clip(model, shape, tensor_clip ? ClipIo::kWhole : ClipIo::kStreamed,
                                    o.max_memory, encode_io, decode_io);
  for (const auto& note : plans.notes) r.notes.push_back(note);

  r.frames = shape[2];
  r.height = shape[3];
  r.width = shape[4];
  r.fps = o.fps > 0 ? o.fps : clip.fps > 0 ? clip.fps : kDefaultFps;
  // An earlier run's marker no longer describes what is about to be written.
  if (old_marker) ::unlink(marker_file.c_str());
  const std::string& n = entry.name;

  // Encode, writing the frames the model sees as they are first read.
  FramesOutput orig(o, "orig", n + "_orig", r.frames, r.fps);
  int64_t orig_written = 0;
  EncodeOptions encode = o.encode;
  encode.tiling = plans.encode;
  const EncodeResult enc = model.encode_streamed(
      shape,
      [&](int64_t begin, int64_t end) {
        Tensor part = clip_frames(begin, end);
        if (end > orig_written) {
          orig.add(tensor_to_rgb(frames_of_clip(part, orig_written - begin, end - begin)));
          orig_written = end;
        }
        return part;
      },
      encode);
  if (const int64_t bad = count_non_finite(enc.z); bad > 0)
    r.warnings.push_back(cat("the latent holds ", bad, " NaN or infinite values (of ",
                             enc.z.numel(), "): the model overflowed"));
  r.moments = latent_moments(enc.z.data(), enc.z.numel());
  r.latent_shape = enc.z.shape();
  r.outputs.push_back(orig.finish());  // every frame was read: its writer's memory goes back

  // Decode, measuring and writing each part beside the same frames of the clip, read again.
  std::optional<ClipReader> again;
  if (!tensor_clip) again.emplace(clip);
  FramesOutput recn(o, "recn", n + "_recn", r.frames, r.fps);
  std::optional<FramesOutput> compare;
  if (o.compare) compare.emplace(o, "compare", n + "_compare", r.frames, r.fps);
  std::vector<double> psnr, ssim;
  int64_t decoded = 0, non_finite = 0;
  DecodeOptions decode;
  decode.tiling = plans.decode;
  model.decode_streamed(
      enc.z,
      [&](const Tensor& part) {
        const int64_t end = decoded + part.dim(2);
        if (part.dim(3) != r.height || part.dim(4) != r.width || end > r.frames)
          fail("the reconstruction's frames ", to_string(part.shape()), " do not fit the clip ",
               to_string(shape));
        non_finite += count_non_finite(part);
        const RgbFrames seen =
            tensor_to_rgb(again ? again->read(decoded, end) : frames_of_clip(clip.x, decoded, end));
        const RgbFrames made = tensor_to_rgb(part);
        const ClipMetrics m = clip_metrics(seen, made);
        psnr.insert(psnr.end(), m.psnr.begin(), m.psnr.end());
        ssim.insert(ssim.end(), m.ssim.begin(), m.ssim.end());
        recn.add(made);
        if (compare) compare->add(side_by_side(seen, made));
        decoded = end;
      },
      decode);
  if (decoded != r.frames)
    fail("the reconstruction has ", decoded, " frames for an input of ", to_string(shape));
  if (non_finite > 0)
    r.warnings.push_back(cat("the reconstruction holds ", non_finite,
                             " NaN or infinite values (of ", numel(shape),
                             "): the model overflowed"));
  const ClipMetrics m = metrics_of_frames(std::move(psnr), std::move(ssim));
  r.psnr = m.mean_psnr;
  r.ssim = m.mean_ssim;
  r.psnr_frames = m.psnr;
  r.ssim_frames = m.ssim;

  r.outputs.push_back(recn.finish());
  if (compare) {
    r.outputs.push_back(compare->finish());
    const RgbFrames plot = psnr_plot(m.psnr);
    r.outputs.push_back("compare/" + n + "_psnr.png");
    write_png(join(o.out_dir, r.outputs.back()), plot.frame(0), plot.height, plot.width);
  }
  if (o.latents) {
    make_subfolder(o, "latents");
    Metadata meta = latent_metadata(info, shape, o.encode, &clip);
    if (o.fps > 0) meta["fps"] = format_fps(o.fps);
    r.outputs.push_back("latents/" + n + ".latent.safetensors");
    write_latent_file(join(o.out_dir, r.outputs.back()), enc, meta);
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
  // Keyed as "outputs" is stored (escaped when it is).
  const bool escape_outputs = texts_need_escaping(r.outputs);
  Json sizes = Json::object();
  for (const auto& rel : r.outputs)
    sizes[escape_outputs ? escape_bytes(rel) : rel] = fs::file_size(fs::path(o.out_dir) / rel);
  marker["output_bytes"] = sizes;
  make_subfolder(o, "done");
  const std::string text = dump(marker);
  AtomicFile out(marker_file);
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
    if (!j.is_object() || j.value("key", "") != key || j.value("status", "") != "ok" ||
        get_text(j, "path") != entry.path)
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
    r.outputs = get_texts(j, "outputs");
    if (j.contains("notes")) r.notes = get_texts(j, "notes");
    if (j.contains("warnings")) r.warnings = get_texts(j, "warnings");
    const Json& sizes = j.at("output_bytes");
    const std::vector<std::string> keys = j.at("outputs").get<std::vector<std::string>>();
    for (size_t i = 0; i < r.outputs.size(); ++i) {
      std::error_code ec;
      const auto bytes = fs::file_size(fs::path(o.out_dir) / r.outputs[i], ec);
      if (ec || bytes != sizes.at(keys[i]).get<uintmax_t>()) return std::nullopt;
    }
    // A run killed after writing the marker, before releasing the clip's lock, left its file.
    FileLock::remove_abandoned(lock_path(entry, o));
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
    try {
      clips.push_back(result_json(r));
    } catch (const std::exception& e) {
      // One clip's record never costs the others theirs.
      clips.push_back({{"row", r.entry.row},
                       {"status", r.ok ? "ok" : "failed"},
                       {"error", cat("its record could not be written: ", e.what())}});
    }
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
  if (!o.model_label.empty()) put_text(model, "model", o.model_label);
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
  return dump(summary) + "\n";
}

}  // namespace vvae
