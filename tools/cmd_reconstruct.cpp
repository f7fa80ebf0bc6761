// vvae reconstruct: Open-Sora's scripts/vae/inference.py and stats.py in one command.
//
//   vvae reconstruct --model M clip.mp4 [more clips | --manifest data.csv] -o out/
//       [--resume] [--shard i/n] [--compare] [--latents] [frame and size options]
//
// One input: any failure is one error line and exit status 1. Several inputs or a manifest: a
// failed clip is logged, recorded in summary.json and skipped; the exit status is 3 when any
// clip failed. Progress: a bar with clips/s and ETA on a terminal, one log line per clip
// otherwise.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli_common.hpp"
#include "commands.hpp"
#include "progress.hpp"
#include "vvae/memory.hpp"
#include "vvae/reconstruct.hpp"

namespace vvae::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kSomeClipsFailed = 3;
constexpr size_t kMaxTableRows = 50;

struct ReconstructCommand {
  CommonOptions common;
  ClipCliOptions clip;
  std::vector<std::string> inputs;
  std::string manifest, out_dir, shard_text;
  ReconstructOptions options;
  bool resume = false;
  bool verbose = false;

  void add(CLI::App& app) {
    CLI::App* cmd = app.add_subcommand(
        "reconstruct",
        "Encode and decode videos: writes OUT/orig/NAME_orig.mp4 and OUT/recn/NAME_recn.mp4, "
        "PSNR/SSIM per clip, the latent mean/std (stats.py) and OUT/summary.json");
    add_model_options(*cmd, common);
    add_tiling_options(*cmd, common.load);
    add_memory_option(*cmd, common);
    cmd->add_option("inputs", inputs, "Videos, images or clip tensors");
    cmd->add_option("--manifest", manifest, "CSV with a 'path' column (Open-Sora's dataset CSV)");
    cmd->add_option("-o,--output", out_dir, "Output folder (created if its parent exists)")
        ->required();
    cmd->add_flag("--resume", resume,
                  "Skip clips whose outputs a previous run completed with the same options");
    cmd->add_option("--shard", shard_text,
                    "Process shard i of n (0 <= i < n): rows with row % n == i; or auto: the task "
                    "of a Slurm job array");
    cmd->add_flag("--compare", options.compare,
                  "Also write compare/NAME_compare.mp4 (original | reconstruction | error) and "
                  "compare/NAME_psnr.png");
    cmd->add_flag("--latents", options.latents, "Also write latents/NAME.latent.safetensors");
    cmd->add_option("--fps", options.fps, "Frame rate of the videos written (default: the clip's)")
        ->check(in_range(1e-3, kMaxFps));
    cmd->add_option("--crf", options.crf, "H.264 quality, 0 (lossless) to 51 (default 23)")
        ->check(in_range(0, 51));
    cmd->add_flag("--sample", options.encode.sample, "Sample the posterior instead of its mode");
    cmd->add_option("--seed", options.encode.seed, "Seed for --sample");
    cmd->add_flag("-v,--verbose", verbose, "Print what was done to each clip");
    add_clip_options(*cmd, clip);
    cmd->callback([this] { run(); });
  }

  void prepare_output_folder() const {
    if (fs::exists(out_dir) && !fs::is_directory(out_dir))
      fail("output '", out_dir, "' is a file, not a folder");
    if (!fs::exists(out_dir)) {
      fs::path parent = fs::path(out_dir).parent_path();
      if (fs::path(out_dir).filename().empty()) parent = parent.parent_path();
      if (parent.empty()) parent = ".";
      if (!fs::is_directory(parent))
        fail("cannot create output folder '", out_dir, "': folder '", parent.string(),
             "' does not exist");
      std::error_code ec;
      fs::create_directory(out_dir, ec);
      if (ec) fail("cannot create output folder '", out_dir, "': ", ec.message());
    }
    if (::access(out_dir.c_str(), W_OK) != 0) fail("output folder '", out_dir, "' is not writable");
    check_output_subfolders(out_dir);
  }

  void run() {
    if (manifest.empty() && inputs.empty())
      fail("no input: give video files or --manifest data.csv");
    if (!manifest.empty() && !inputs.empty()) fail("give video files or --manifest, not both");
    options.clip = clip.resolve();
    options.out_dir = out_dir;
    options.model_label = !common.load.model.empty() ? common.load.model : common.load.weights;
    options.compute = common.load.compute;
    if (!common.max_memory.empty()) options.max_memory = parse_memory_size(common.max_memory);
    // Clips are streamed a tile at a time: freed tiles go back to the system at once, or glibc's
    // heap keeps tens of MiB more the more tiles a clip has.
    return_freed_memory_promptly();
    const Shard shard = shard_text.empty() ? Shard{} : parse_shard(shard_text);
    std::vector<ManifestEntry> all =
        manifest.empty() ? entries_from_paths(inputs) : read_manifest(manifest);
    const std::vector<ManifestEntry> entries = shard_entries(all, shard);
    const bool single = manifest.empty() && inputs.size() == 1;
    // Every file the run reads, so that no output replaces one.
    options.inputs = model_input_files(common.load);
    options.inputs.add(manifest);
    for (const ManifestEntry& e : all) options.inputs.add(e.path);
    prepare_output_folder();
    const std::string summary_path =
        (fs::path(out_dir) / (shard.count > 1
                                  ? cat("summary.shard-", shard.index, "-of-", shard.count, ".json")
                                  : std::string("summary.json")))
            .string();
    options.inputs.check_output_file(summary_path);
    Model model = load_model(common);
    const std::string key = run_key(model.info(), options);
    const std::string shard_name = cat(shard.index, "/", shard.count);

    if (!common.quiet)
      std::cout << "reconstructing " << entries.size() << " clip"
                << (entries.size() == 1 ? "" : "s")
                << (shard.count > 1
                        ? " (shard " + shard_name + " of " + std::to_string(all.size()) + ")"
                        : "")
                << " with " << model.info().family
                << (model.info().preset.empty() ? "" : " (" + model.info().preset + ")") << " into "
                << out_dir << "\n";
    const auto start = Clock::now();
    std::vector<ClipResult> results;
    Progress progress(static_cast<int64_t>(entries.size()), common.quiet);
    // Clips another run is writing (the same manifest twice, or overlapping shards) wait until
    // every other clip is done, then take that run's result or redo what it left.
    std::vector<size_t> order(entries.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (size_t pass = 0; pass < order.size(); ++pass) {
      const size_t i = order[pass];
      const bool waiting = pass >= entries.size();
      const ManifestEntry& e = entries[i];
      const std::string tag = cat("[", i + 1, "/", entries.size(), "] ", e.path);
      if (resume) {
        if (auto done = completed_clip(e, options, key)) {
          results.push_back(*done);
          if (!progress.on_terminal())
            progress.line(std::cout, tag + ": complete from an earlier run, skipped");
          progress.step(false, 0);
          continue;
        }
      }
      ClipResult r;
      const auto attempt = Clock::now();
      try {
        r = reconstruct_clip(model, e, options, key, waiting);
      } catch (const ClipBusy&) {
        if (single) throw;   // one clip: say so at once
        order.push_back(i);  // after the others, waiting for its lock
        continue;
      } catch (const std::exception& ex) {
        if (single) throw;
        r.entry = e;
        r.error = ex.what();
        results.push_back(r);
        progress.line(std::cerr, "vvae: error: " + tag + ": " + r.error + " (skipped)");
        progress.step(true, std::chrono::duration<double>(Clock::now() - attempt).count());
        continue;
      }
      for (const auto& w : r.warnings) progress.line(std::cerr, "vvae: warning: " + w);
      if (single || verbose)
        for (const auto& n : r.notes) progress.line(std::cout, "  " + e.path + ": " + n);
      // On a terminal the bar replaces the per-clip lines (except for a single clip).
      if (single || !progress.on_terminal())
        progress.line(std::cout, cat(tag, " -> ", e.name, ": ", r.frames, "x", r.height, "x",
                                     r.width, "  PSNR ", fixed(r.psnr, 2), " dB  SSIM ",
                                     fixed(r.ssim, 4), "  ", format_seconds(r.seconds)));
      results.push_back(r);
      progress.step(true, r.seconds, cat(e.name, " PSNR ", fixed(r.psnr, 2)));
    }
    progress.finish();
    std::stable_sort(results.begin(), results.end(), [](const ClipResult& a, const ClipResult& b) {
      return a.entry.row < b.entry.row;
    });
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();

    // Only one run writes a given summary (shards write their own): what a killed one left goes.
    remove_stale_temporaries_of(summary_path);
    write_text_file(summary_path, summary_json(results, model.info(), options, shard_name, wall));
    if (!common.quiet) print_table(results, summary_path, wall);
    for (const auto& r : results)
      if (!r.ok) throw ExitStatus{kSomeClipsFailed};
  }

  static void print_table(const std::vector<ClipResult>& results, const std::string& summary,
                          double wall) {
    int64_t ok = 0, failed = 0, resumed = 0;
    double psnr = 0, ssim = 0;
    for (const auto& r : results) {
      if (!r.ok) {
        ++failed;
        continue;
      }
      ++ok;
      resumed += r.resumed;
      psnr += r.psnr;
      ssim += r.ssim;
    }
    const bool all_rows = results.size() <= kMaxTableRows;
    std::printf("\n%-28s %6s %11s %8s %7s %9s  %s\n", "clip", "frames", "size", "PSNR", "SSIM",
                "seconds", "status");
    for (const auto& r : results) {
      if (!all_rows && r.ok) continue;
      std::string name =
          r.entry.name.size() > 28 ? r.entry.name.substr(0, 25) + "..." : r.entry.name;
      if (!r.ok) {
        std::printf("%-28s %6s %11s %8s %7s %9s  failed: %s\n", name.c_str(), "-", "-", "-", "-",
                    "-", r.error.c_str());
        continue;
      }
      const std::string size = cat(r.height, "x", r.width);
      std::printf("%-28s %6lld %11s %8.2f %7.4f %9.2f  %s\n", name.c_str(),
                  static_cast<long long>(r.frames), size.c_str(), r.psnr, r.ssim, r.seconds,
                  r.resumed ? "ok (earlier run)" : "ok");
    }
    if (!all_rows)
      std::printf("(%lld clips ok: per-clip rows are in the summary)\n",
                  static_cast<long long>(ok));
    std::printf("total: %zu clips, %lld ok, %lld failed, %lld from an earlier run; ",
                results.size(), static_cast<long long>(ok), static_cast<long long>(failed),
                static_cast<long long>(resumed));
    if (ok)
      std::printf("mean PSNR %.2f dB, mean SSIM %.4f; ", psnr / static_cast<double>(ok),
                  ssim / static_cast<double>(ok));
    std::printf("%s\n", format_seconds(wall).c_str());
    const RunningLatentStats stats = latent_stats(results);
    if (stats.count())
      std::printf("latent: mean %.6f, std %.6f over %lld clips (stats.py's running formula)\n",
                  stats.mean(), stats.std(), static_cast<long long>(stats.count()));
    std::printf("wrote %s\n", summary.c_str());
    std::fflush(stdout);
  }
};

}  // namespace

void add_reconstruct_command(CLI::App& app) {
  static ReconstructCommand command;
  command.add(app);
}

}  // namespace vvae::cli
