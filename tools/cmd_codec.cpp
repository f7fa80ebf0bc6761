// vvae encode, decode and convert: tensors, videos and images in and out.
//
//   vvae encode  --model M (x.safetensors | clip.mp4 | image.png) -o z.safetensors
//   vvae encode  --model M --manifest data.csv -o cache/ [--resume] [--shard i/n|auto]
//                [--format safetensors|opensora]       (a dataset into a latent cache)
//   vvae decode  --model M z.safetensors -o (x.safetensors | clip.mp4 | frame.png | --frames DIR)
//   vvae convert (clip.mp4 | x.safetensors) -o (x.safetensors | clip.mp4 | frame.png | DIR)
#include <chrono>
#include <iostream>
#include <optional>

#include "cli_common.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "vvae/clip.hpp"
#include "vvae/latent.hpp"
#include "vvae/latent_cache.hpp"
#include "vvae/manifest.hpp"
#include "vvae/memory.hpp"
#include "vvae/safetensors.hpp"

namespace vvae::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kDefaultFps = 16;   // Open-Sora's save fps when nothing says otherwise
constexpr int kSomeClipsFailed = 3;  // as reconstruct: the run finished, some clips failed

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void add_input_option(CLI::App& cmd, std::string& input, const std::string& what) {
  cmd.add_option("input,-i,--input", input, what)->required();
}

struct EncodeCommand {
  CommonOptions common;
  ClipCliOptions clip;
  std::string input, output, tensor, manifest, shard_text, format = "safetensors";
  bool sample = false;
  bool resume = false;
  uint64_t seed = 0;

  void add(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand(
        "encode",
        "Encode a clip (a video, an image, or a (B,C,T,H,W) tensor) to its latent, or with "
        "--manifest a whole dataset into a latent cache (OUT/latents/..., OUT/index.csv)");
    add_model_options(*cmd, common);
    add_tiling_options(*cmd, common.load);
    add_memory_option(*cmd, common);
    cmd->add_option("input,-i,--input", input,
                    "Video or image file, or safetensors holding the clip (tensor 'x' or its "
                    "only tensor)");
    cmd->add_option("-o,--output", output,
                    "Output safetensors: z (and mean, logvar); with --manifest the cache folder "
                    "(created if its parent exists)")
        ->required();
    cmd->add_option("--tensor", tensor, "Name of the input tensor");
    cmd->add_flag("--sample", sample, "Sample the posterior instead of taking its mode");
    cmd->add_option("--seed", seed, "Seed for --sample");
    cmd->add_option("--manifest", manifest,
                    "Encode every clip of this CSV (a 'path' column; Open-Sora's dataset CSV) "
                    "into the cache folder -o: one latent per clip and OUT/index.csv");
    cmd->add_flag("--resume", resume,
                  "With --manifest: skip clips whose latent is in the cache, complete, for the "
                  "same source file, model and options (found by content, whatever the row)");
    cmd->add_option("--shard", shard_text,
                    "With --manifest: encode shard i of n (rows with row % n == i), or 'auto': "
                    "the task of a Slurm job array (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN "
                    "of SLURM_ARRAY_TASK_COUNT); shards share the folder and its index");
    cmd->add_option("--format", format,
                    "With --manifest: safetensors (z, mean, logvar and metadata; default) or "
                    "opensora (torch.save'd (C,T,H,W) z per clip, .pt, and OUT/train.csv with "
                    "latents_path, as Open-Sora's cached_video_text dataset reads)")
        ->check(CLI::IsMember({"safetensors", "opensora"}));
    add_clip_options(*cmd, clip);
    cmd->callback([this] { manifest.empty() ? run() : run_manifest(); });
  }

  void run_manifest() {
    if (!input.empty()) fail("give a clip or --manifest, not both");
    if (!tensor.empty()) fail("--tensor applies to a single safetensors input, not --manifest");
    LatentCacheOptions o;
    if (!common.max_memory.empty()) {
      o.max_memory = parse_memory_size(common.max_memory);
      return_freed_memory_promptly();  // what one clip freed is there for the next
    }
    o.out_dir = output;
    o.clip = clip.resolve();
    o.encode = {sample, seed};
    o.compute = common.load.compute;
    o.format = parse_cache_format(format);
    o.resume = resume;
    o.shard = shard_text.empty() ? Shard{} : parse_shard(shard_text);
    const ManifestTable table = read_manifest_table(manifest);
    // Every file the run reads, so that no output replaces one.
    o.inputs = model_input_files(common.load);
    o.inputs.add(manifest);
    for (const ManifestEntry& e : table.entries) o.inputs.add(e.path);
    o.weights_files = model_weights_files(common.load);
    prepare_cache_folder(o);
    Model model = load_model(common);
    const int64_t rows = static_cast<int64_t>(shard_entries(table.entries, o.shard).size());
    if (!common.quiet)
      std::cout << "encoding " << rows << " clip" << (rows == 1 ? "" : "s")
                << (o.shard.count > 1 ? cat(" (shard ", o.shard.index, "/", o.shard.count, " of ",
                                            table.entries.size(), ")")
                                      : "")
                << " with " << model.info().family
                << (model.info().preset.empty() ? "" : " (" + model.info().preset + ")") << " into "
                << output << (resume ? " (resuming)" : "") << "\n";
    Progress progress(rows, common.quiet);
    const CacheProgress report = [&](const CacheRow& r, int64_t done, int64_t total) {
      const std::string tag = cat("[", done, "/", total, "] ", r.entry.path);
      if (r.status == CacheRow::Status::kFailed) {
        progress.line(std::cerr, "vvae: error: " + tag + ": " + r.error + " (recorded, skipped)");
        progress.step(true, r.seconds);
        return;
      }
      for (const auto& w : r.warnings) progress.line(std::cerr, "vvae: warning: " + w);
      if (!r.plan.empty()) progress.line(std::cout, cat("  ", r.entry.path, ": ", r.plan));
      const std::string what = r.duplicate ? "a duplicate row: shares"
                               : r.resumed ? "already in the cache:"
                                           : "->";
      if (!progress.on_terminal())
        progress.line(std::cout,
                      cat(tag, " ", what, " ", r.latents_path, " ", to_string(r.latent_shape),
                          r.resumed || r.duplicate ? "" : "  " + format_seconds(r.seconds)));
      progress.step(!r.resumed && !r.duplicate, r.seconds);
    };
    const CacheRunResult result = encode_manifest(model, table, o, report);
    progress.finish();
    if (!common.quiet || result.failed > 0)
      (result.failed > 0 ? std::cerr : std::cout)
          << (result.failed > 0 ? "vvae: error: " : "") << result.rows.size()
          << " clips: " << result.encoded << " encoded, " << result.resumed
          << " already in the cache, " << result.duplicates << " duplicate rows, " << result.failed
          << " failed" << (result.failed > 0 ? " (their errors are in the index)" : "") << "; "
          << format_seconds(result.wall_seconds) << "; wrote " << result.index_path << "\n";
    if (result.failed > 0) throw ExitStatus{kSomeClipsFailed};
  }

  void run() {
    if (input.empty()) fail("no input: give a clip (video, image or safetensors) or --manifest");
    if (resume || !shard_text.empty() || format != "safetensors")
      fail("--resume, --shard and --format apply to --manifest");
    InputFiles inputs = model_input_files(common.load);
    inputs.add(input);
    check_output_path(output, inputs);
    const ClipOptions& clip_options = clip.resolve();
    const bool tensor_input = is_tensor_file(input);
    if (tensor_input && clip_options.any_set())
      fail("'", input,
           "' is a tensor file: --num-frames, --frame-interval, --fps-max, --resolution and "
           "--size apply to video and image inputs");
    if (!tensor_input && !tensor.empty()) fail("--tensor applies to safetensors inputs");
    Model model = load_model(common);
    // A video is streamed: its frames are decoded as the model's tiles need them.
    std::optional<ClipReader> clip_read;
    Tensor x;
    Shape shape;
    if (tensor_input) {
      const SafetensorsFile file = SafetensorsFile::open(input);
      x = read_input_tensor(file, tensor, "x");
      shape = x.shape();
    } else {
      return_freed_memory_promptly();  // flat memory however long the clip (see below)
      clip_read.emplace(input, clip_options, shape_rules(model));
      report_clip(clip_read->clip(), common.quiet);
      shape = clip_read->shape();
    }
    EncodeOptions encode = {sample, seed};
    encode.tiling = fitted_tiling(model, shape, true, common,
                                  tensor_input ? ClipIo::kWhole : ClipIo::kStreamed);
    const auto start = Clock::now();
    EncodeResult r = tensor_input ? model.encode(x, encode)
                                  : model.encode_streamed(shape, clip_read->frames(), encode);
    const double took = seconds_since(start);
    warn_non_finite(r.z, "the latent", common.quiet);
    write_latent_file(
        output, r,
        latent_metadata(model.info(), shape, encode, clip_read ? &clip_read->clip() : nullptr));
    if (!common.quiet)
      std::cout << "encoded " << to_string(shape) << " -> z " << to_string(r.z.shape()) << " in "
                << took << " s, wrote " << output << "\n";
  }
};

struct DecodeCommand {
  CommonOptions common;
  std::string input, output, tensor;
  double fps = 0;
  int crf = 23;
  bool frames = false;
  bool overwrite = false;

  void add(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand(
        "decode", "Decode a latent (B,C,T,H,W) to a clip: a tensor, a video or images");
    add_model_options(*cmd, common);
    add_tiling_options(*cmd, common.load);
    add_memory_option(*cmd, common);
    add_input_option(*cmd, input,
                     "safetensors file holding the latent (tensor 'z' or its only tensor)");
    cmd->add_option("-o,--output", output,
                    "Output: .safetensors (tensor 'x', not clamped), .mp4/.mkv/.mov (H.264), "
                    ".png (one frame), or a folder with --frames")
        ->required();
    cmd->add_option("--tensor", tensor, "Name of the latent tensor");
    cmd->add_option("--fps", fps, "Frame rate of a video output (default: the latent's)")
        ->check(in_range(1e-3, kMaxFps));
    cmd->add_option("--crf", crf, "H.264 quality, 0 (lossless) to 51 (default 23)")
        ->check(in_range(0, 51));
    cmd->add_flag("--frames", frames,
                  "Write a folder of PNG frames (frame_00000.png, ...): a new or empty folder");
    cmd->add_flag("--overwrite", overwrite,
                  "With --frames: replace the frames an earlier vvae run wrote in the folder");
    cmd->callback([this] { run(); });
  }

  void run() {
    const OutputKind kind = output_kind(output, frames);
    if (overwrite && kind != OutputKind::frames) fail("--overwrite applies to --frames folders");
    InputFiles inputs = model_input_files(common.load);
    inputs.add(input);
    if (kind == OutputKind::frames)
      check_frames_folder(output, inputs, overwrite);
    else
      check_output_path(output, inputs);
    Model model = load_model(common);
    const LatentFile latent = read_latent_file(input, tensor);
    const Tensor& z = latent.z;
    const std::string mismatch = model_mismatch(latent.metadata, model.info());
    if (!mismatch.empty() && !common.quiet) warn(mismatch);
    if (kind != OutputKind::tensor && z.rank() == 5 && z.dim(0) != 1)
      fail("the latent holds a batch of ", z.dim(0),
           " clips: decode it to .safetensors, or one clip at a time");
    // A video is streamed: each part of the clip is written as soon as it is decoded.
    const bool streamed = kind == OutputKind::video;
    // A streamed run allocates and frees a tile's tensors over and over: glibc's heap would keep
    // tens of MiB of them (the more tiles, the more), so freed blocks go back at once.
    if (streamed) return_freed_memory_promptly();
    DecodeOptions decode;
    const Shape out = model.decoded_shape(z.shape());
    decode.tiling = fitted_tiling(model, z.shape(), false, common,
                                  streamed ? ClipIo::kStreamed : ClipIo::kWhole,
                                  streamed ? video_writer_bytes(out.at(3), out.at(4)) : 0);
    const double rate = output_fps(latent.metadata, kind, common.quiet);
    const auto start = Clock::now();
    Shape decoded;
    if (streamed) {
      decoded = decode_to_video(model, z, out, decode, output, {rate, crf}, common.quiet);
    } else {
      const Tensor x = model.decode(z, decode);
      decoded = x.shape();
      warn_non_finite(x, "the decoded clip", common.quiet);
      if (kind == OutputKind::tensor) {
        Metadata meta = model_metadata(model.info());
        meta["latent_shape"] = to_string(z.shape());
        for (const char* key : {"fps", "source", "frames", "size"})
          if (latent.metadata.count(key)) meta[key] = latent.metadata.at(key);
        save_safetensors(output, {{"x", x}}, meta);
      } else {
        write_frames(output, kind, tensor_to_rgb(x), rate, crf, overwrite);
      }
    }
    const double took = seconds_since(start);
    if (!common.quiet)
      std::cout << "decoded " << to_string(z.shape()) << " -> x " << to_string(decoded) << " in "
                << took << " s, wrote " << output << "\n";
  }

  // --fps, else the latent's, else Open-Sora's default (said for a video).
  double output_fps(const Metadata& metadata, OutputKind kind, bool quiet) const {
    if (fps > 0) return fps;
    const double rate = metadata_fps(metadata);
    if (rate > 0) return rate;
    if (kind == OutputKind::video && !quiet)
      std::cout << "the latent records no frame rate: writing " << kDefaultFps
                << " fps (--fps sets it)\n";
    return kDefaultFps;
  }

  // Decodes z into the video at `path`, part by part as the decoder finishes them; returns the
  // decoded clip's shape (`shape`, the planned one, with the frames written).
  static Shape decode_to_video(const Model& model, const Tensor& z, const Shape& shape,
                               const DecodeOptions& decode, const std::string& path,
                               const VideoWriteOptions& video, bool quiet) {
    std::optional<VideoWriter> writer;
    int64_t frames = 0, non_finite = 0;
    model.decode_streamed(
        z,
        [&](const Tensor& part) {
          non_finite += count_non_finite(part);
          const RgbFrames rgb = tensor_to_rgb(part);
          if (!writer) writer.emplace(path, rgb.height, rgb.width, video);
          for (int64_t t = 0; t < rgb.frames; ++t) writer->write(rgb.frame(t));
          frames += rgb.frames;
        },
        decode);
    if (!writer) fail("cannot write '", path, "': no frames");
    writer->finish();
    Shape out = shape;
    out[2] = frames;
    if (non_finite > 0) warn_non_finite_count(non_finite, out, "the decoded clip", quiet);
    return out;
  }
};

struct ConvertCommand {
  CommonOptions common;
  ClipCliOptions clip;
  std::string input, output, tensor;
  double fps = 0;
  int crf = 23;
  bool frames = false;
  bool overwrite = false;

  void add(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand(
        "convert",
        "Convert between videos, images and clip tensors (x in [-1, 1], (1,3,T,H,W)); with "
        "--model, frames and size are made valid for that model");
    add_input_option(*cmd, input, "Video, image, or safetensors holding a clip tensor");
    cmd->add_option("-o,--output", output,
                    "Output: .safetensors (tensor 'x'), .mp4/.mkv/.mov, .png, or a folder with "
                    "--frames")
        ->required();
    cmd->add_option("-m,--model", common.load.model, "Make the clip valid for this model");
    cmd->add_option("--preset", common.load.preset, "Preset for --model");
    cmd->add_option("--tensor", tensor, "Name of the input tensor");
    cmd->add_option("--fps", fps, "Frame rate of a video output (default: the clip's)")
        ->check(in_range(1e-3, kMaxFps));
    cmd->add_option("--crf", crf, "H.264 quality, 0 (lossless) to 51 (default 23)")
        ->check(in_range(0, 51));
    cmd->add_flag("--frames", frames, "Write a folder of PNG frames: a new or empty folder");
    cmd->add_flag("--overwrite", overwrite,
                  "With --frames: replace the frames an earlier vvae run wrote in the folder");
    cmd->add_flag("-q,--quiet", common.quiet, "Print nothing but errors");
    cmd->add_option("--threads", common.threads, "Threads (default: all cores)")
        ->check(in_range(0, kMaxThreads));
    add_clip_options(*cmd, clip);
    cmd->callback([this] { run(); });
  }

  void run() {
    set_num_threads(common.threads);
    const OutputKind kind = output_kind(output, frames);
    if (overwrite && kind != OutputKind::frames) fail("--overwrite applies to --frames folders");
    InputFiles inputs = model_input_files(common.load);
    inputs.add(input);
    if (kind == OutputKind::frames)
      check_frames_folder(output, inputs, overwrite);
    else
      check_output_path(output, inputs);
    const ClipOptions& clip_options = clip.resolve();
    ShapeRules rules;
    std::optional<Model> model;
    if (!common.load.model.empty() || !common.load.preset.empty()) {
      LoadOptions load = common.load;
      load.without_weights = true;
      model.emplace(Model::load(load));
      rules = shape_rules(*model);
    }
    Clip c;
    if (is_tensor_file(input)) {
      if (clip_options.any_set())
        fail("'", input, "' is a tensor file: the frame and size options apply to videos");
      c = clip_from_tensor(input, tensor);
    } else {
      c = load_clip(input, clip_options, rules);
      report_clip(c, common.quiet);
    }
    const double rate = fps > 0 ? fps : c.fps > 0 ? c.fps : kDefaultFps;
    if (kind == OutputKind::tensor) {
      Metadata meta = {{"vvae_version", version()}, {"layout", "B,C,T,H,W"}};
      add_clip_metadata(meta, c);
      meta["fps"] = format_fps(rate);
      save_safetensors(output, {{"x", c.x}}, meta);
    } else {
      write_frames(output, kind, tensor_to_rgb(c.x), rate, crf, overwrite);
    }
    if (!common.quiet)
      std::cout << "wrote " << output << ": " << c.frames() << " frames " << c.height() << "x"
                << c.width()
                << (kind == OutputKind::video ? " at " + format_fps(rate) + " fps" : "") << "\n";
  }
};

}  // namespace

void add_encode_command(CLI::App& app) {
  static EncodeCommand command;
  command.add(app);
}

void add_decode_command(CLI::App& app) {
  static DecodeCommand command;
  command.add(app);
}

void add_convert_command(CLI::App& app) {
  static ConvertCommand command;
  command.add(app);
}

}  // namespace vvae::cli
