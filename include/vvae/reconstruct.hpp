#pragma once
// `vvae reconstruct`: Open-Sora's scripts/vae/inference.py and stats.py in one pass, one clip at
// a time, resumable.
//
// For a clip NAME the outputs are, under the output folder:
//   orig/NAME_orig.mp4      the frames the model saw, as 8-bit RGB (save_sample's rounding)
//   recn/NAME_recn.mp4      the reconstruction (.png instead of .mp4 when the clip is one frame)
//   compare/NAME_compare.mp4 and compare/NAME_psnr.png   with --compare
//   latents/NAME.latent.safetensors                       with --latents
//   done/NAME.json          written last: the clip's result, its run key and every output's size
// A clip is complete when its done marker parses, carries this run's key (model config and every
// option that changes the outputs) and source path, and every output it lists exists with the
// size it records. Each file is written under a temporary name and renamed, so an interrupted
// run leaves at worst temporaries (removed when the clip is redone) and never a marker for
// outputs that are not all in place.
//
// What vvae never does to a user's files: a clip holds the lock `.NAME.vvae-lock` while it is
// written, so two runs never write (or clean up) the same clip at once; the subfolders above
// are created as real folders and a symlink in their place is refused; no output may be one of
// the run's inputs (`ReconstructOptions::inputs`); only temporaries vvae names
// (`NAME.tmp-PID-XXXXXX` of a process that is gone) and markers it wrote are ever removed.
// Paths are bytes: a string that is not UTF-8 is stored escaped (`\xNN`, `\\`) in markers and
// summaries, and the record lists the fields escaped (`"escaped": ["path", ...]`).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vvae/clip.hpp"
#include "vvae/error.hpp"
#include "vvae/files.hpp"
#include "vvae/manifest.hpp"
#include "vvae/metrics.hpp"
#include "vvae/model.hpp"
#include "vvae/video.hpp"

namespace vvae {

struct ReconstructOptions {
  std::string out_dir;
  ClipOptions clip;
  EncodeOptions encode;
  double fps = 0;  // output fps override (0: the clip's own, 16 when unknown)
  int crf = 23;
  bool compare = false;
  bool latents = false;
  std::string model_label;  // what --model named, for the summary
  ComputeOptions compute;   // the model's precision and convolution algorithm (in the run key)
  // Cap on the process's resident memory (bytes; 0: none): each clip runs with the tilings that
  // fit it (Model::fit_encode, fit_decode; the clip streamed), said in the clip's notes.
  int64_t max_memory = 0;
  InputFiles inputs;  // what the run reads (model, manifest, clips): never an output
};

struct ClipResult {
  ManifestEntry entry;
  bool ok = false;
  bool resumed = false;  // completed by an earlier run
  std::string error;
  int64_t frames = 0;
  int64_t height = 0;
  int64_t width = 0;
  double fps = 0;
  double psnr = 0;
  double ssim = 0;
  double seconds = 0;
  std::vector<double> psnr_frames;
  std::vector<double> ssim_frames;
  LatentMoments moments;
  Shape latent_shape;
  std::vector<std::string> outputs;  // relative to the output folder
  std::vector<std::string> notes;
  std::vector<std::string> warnings;
};

// Identifies what a run's outputs depend on: model family and config, weights file, and every
// option that changes an output.
std::string run_key(const ModelInfo& info, const ReconstructOptions& options);

// The output subfolders (orig, recn, compare, latents, done).
const std::vector<std::string>& output_subfolders();
// Fails when one of them exists in `out_dir` as a symlink or a file (before any work).
void check_output_subfolders(const std::string& out_dir);

// Thrown by reconstruct_clip without `wait` when another run holds the clip's lock.
class ClipBusy : public Error {
 public:
  using Error::Error;
};

// Reads, encodes, decodes, measures and writes one clip, then its done marker. When another run
// holds the clip's lock, throws ClipBusy at once, or with `wait` waits for it and then takes
// that run's result if it completed the clip (a manifest run does its other clips first).
// Throws Error before any work when an output would replace an input or the run's planned peak
// memory does not fit (check_memory_fits).
ClipResult reconstruct_clip(const Model& model, const ManifestEntry& entry,
                            const ReconstructOptions& options, const std::string& key,
                            bool wait = false);

// The recorded result of `entry` when an earlier run completed it with this key. A lock file that
// run left for the clip (killed before releasing it) is then removed, unless a process holds it.
std::optional<ClipResult> completed_clip(const ManifestEntry& entry,
                                         const ReconstructOptions& options, const std::string& key);

// Removes the temporaries an interrupted run left for this clip's outputs: files named
// `OUTPUT.tmp-PID-XXXXXX` whose process is gone, in real subfolders. Call with the clip's lock
// held (reconstruct_clip does).
void remove_stale_temporaries(const ManifestEntry& entry, const ReconstructOptions& options);

// stats.py's running mean/std over the latents of the successful clips, in manifest order.
RunningLatentStats latent_stats(const std::vector<ClipResult>& results);

// summary.json: per clip (path, name, status, frames, size, fps, psnr, ssim, seconds, outputs,
// notes), totals, the latent mean/std, the vvae version and the model.
std::string summary_json(const std::vector<ClipResult>& results, const ModelInfo& info,
                         const ReconstructOptions& options, const std::string& shard,
                         double wall_seconds);

}  // namespace vvae
