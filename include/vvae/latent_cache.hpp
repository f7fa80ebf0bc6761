#pragma once
// `vvae encode --manifest`: a dataset encoded once into a latent cache that a trainer then reads
// for many epochs. One latent file per clip and an index of the manifest's rows:
//
//   OUT/latents/<options id>/<k0k1>/<key>.safetensors   z (1, C, T', H', W') float32 as the model's
//       encode returns it (scaled and shifted; the mode, or a draw with EncodeOptions::sample),
//       and mean/logvar for variational families, with the metadata `vvae encode` writes plus
//       cache_key, cache_options and source_identity;
//   or, with CacheFormat::kOpenSora, <key>.pt: torch.save of z[0], a (C, T', H', W') float32
//       tensor, what Open-Sora's cached_video_text dataset loads (the metadata rides along as a
//       record torch ignores);
//   OUT/index.csv   every input row with all its columns, then latents_path (absolute),
//       latent_shape ("16x3x32x32"), status (ok, failed, or pending: not yet done by any run),
//       error (one line), latent_key and cache_options;
//   OUT/train.csv   (kOpenSora) the rows whose latent is there, with latents_path (and empty
//       text_t5_path / text_clip_path columns when the manifest has none, which that dataset
//       reads for every row).
//
// Resume by content: a clip's key hashes its source file's identity (size, mtime and its first,
// middle and last 64 KiB), the model (config hash and the weights' content) and every option
// that changes the latent; the file name derives from it, so a resume finds a clip's latent
// whatever the CSV's order, duplicate rows share one file, and a changed source or option is a
// new key. A latent counts as done when its file is complete (every byte the header promises)
// and records its key.
//
// Faults and concurrency: files are written under a temporary name and renamed; a clip holds the
// lock `.<key>.vvae-lock` beside its latent while it is encoded (a run finding it held moves on
// and comes back to it at the end, then takes the other run's latent); index.csv is rewritten
// atomically under the lock OUT/.index.vvae-lock by merging: this run's rows, the index's rows
// for the others (an ok row stays ok while its latent is valid), and rows of other manifests
// kept at the end, so concurrent runs and shards never lose each other's rows. Rows are matched
// by path (and occurrence, for duplicate rows), so a reordered or re-captioned CSV still
// matches. Temporaries of a killed run are removed by the next run (under the clip's lock).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vvae/clip.hpp"
#include "vvae/compute.hpp"
#include "vvae/files.hpp"
#include "vvae/manifest.hpp"
#include "vvae/model.hpp"

namespace vvae {

enum class CacheFormat { kSafetensors, kOpenSora };
// "safetensors" or "opensora"; throws Error otherwise.
CacheFormat parse_cache_format(const std::string& text);

struct LatentCacheOptions {
  std::string out_dir;
  ClipOptions clip;
  EncodeOptions encode;
  ComputeOptions compute;  // in the key (tiling and model_args are, through the config hash)
  CacheFormat format = CacheFormat::kSafetensors;
  bool resume = false;  // skip clips whose latent is complete and valid
  Shard shard;
  // The checkpoint files the model was loaded from: their content is part of every key, so a
  // retrained checkpoint with the same config is a new cache.
  std::vector<std::string> weights_files;
  InputFiles inputs;  // what the run reads (model, manifest, clips): never an output
  // The index is also merged every this many seconds while a long run goes on (0: only at the
  // end), so that it shows progress.
  double index_every_seconds = 300;
  // A cap on the process's resident memory (bytes; 0: none): each clip runs the plan that fits
  // (Model::fit_encode), which its row's `plan` says. A cap is part of the cache key (it may choose
  // other tiles); runs without one keep their keys.
  int64_t max_memory = 0;
};

struct CacheRow {
  enum class Status { kPending, kOk, kFailed };
  ManifestEntry entry;
  Status status = Status::kPending;
  bool resumed = false;    // the latent was already there (an earlier or a concurrent run)
  bool duplicate = false;  // an earlier row of this run has the same key: it shares that file
  std::string key;         // empty when the source could not be read
  std::string latents_path;
  Shape latent_shape;  // as stored: (1, C, T, H, W), or (C, T, H, W) for kOpenSora
  std::string error;
  double seconds = 0;
  std::vector<std::string> notes;
  std::vector<std::string> warnings;
  std::string plan;  // under LatentCacheOptions::max_memory: the plan that ran, in one line
};

struct CacheRunResult {
  std::vector<CacheRow> rows;  // this run's rows (its shard of the manifest), in manifest order
  int64_t encoded = 0;
  int64_t resumed = 0;
  int64_t duplicates = 0;
  int64_t failed = 0;
  std::string index_path;
  double wall_seconds = 0;
};

// Called as each row is settled (done: rows settled so far, of total).
using CacheProgress = std::function<void(const CacheRow& row, int64_t done, int64_t total)>;

// A source file's identity: its size, mtime and the SHA-256 of its first, middle and last
// 64 KiB, as JSON text. Throws Error when the file cannot be read.
std::string source_identity(const std::string& path);
// What every key of a run shares, as JSON text: the config hash, the weights' content (size and
// a sample, not their path or mtime, so copies of a model on several machines agree), precision,
// convolution algorithm, frame and size options, sampling and seed.
std::string cache_options_json(const ModelInfo& info, const LatentCacheOptions& o);
// 16 hex digits of SHA-256 of cache_options_json: the latents' subfolder.
std::string cache_options_id(const std::string& options_json);
// 32 hex digits of SHA-256 of the options and the source's identity.
std::string cache_clip_key(const std::string& options_json, const std::string& source_identity);
// The latent of `key`, relative to the cache folder.
std::string cache_latent_path(const std::string& options_id, const std::string& key,
                              CacheFormat format);
// The stored shape when `path` is a complete latent vvae wrote for `key`, else nullopt.
std::optional<Shape> cached_latent_shape(const std::string& path, const std::string& key,
                                         CacheFormat format);

// Fails before any work when the cache folder cannot be used: makes it when its parent exists,
// checks it is writable, that `latents` is a real folder, that index.csv (when there) is an
// index vvae wrote and that no file the run writes there is one of its inputs.
void prepare_cache_folder(const LatentCacheOptions& o);

// Encodes the rows of `o.shard` of the manifest `table` (read_manifest_table) into the cache
// and merges them into index.csv. A row that fails is recorded (status failed, its error) and
// the run goes on; errors about the cache folder itself throw.
CacheRunResult encode_manifest(const Model& model, const ManifestTable& table,
                               const LatentCacheOptions& o, const CacheProgress& progress = {});

// The steps of encode_manifest one clip at a time, for callers that schedule the clips
// themselves (the Python package's vvae.ray: many processes, on one or many machines, sharing
// one cache folder): the same keys, file names, locks and atomic writes, so the cache is the one
// encode_manifest makes. The index is written apart, by merge_cache_index.
class LatentCacheWriter {
 public:
  // Checks the folder (prepare_cache_folder), makes its latents folders and removes the
  // temporaries of killed runs. `model` must outlive the writer.
  LatentCacheWriter(const Model& model, const LatentCacheOptions& o);
  ~LatentCacheWriter();
  LatentCacheWriter(const LatentCacheWriter&) = delete;
  LatentCacheWriter& operator=(const LatentCacheWriter&) = delete;

  // cache_options_json of the model and options: what merge_cache_index needs.
  const std::string& options_json() const;
  // Settles one manifest row as encode_manifest does: takes its latent when o.resume finds it
  // complete and valid, waits for a clip another run holds and then takes that run's latent,
  // else encodes it under its lock. A row that fails comes back failed with its one-line error;
  // errors about the cache folder itself throw.
  CacheRow encode_row(const ManifestEntry& entry);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Merges `rows` (settled rows of `table`, matched by ManifestEntry::row; a row of the table
// without one is another run's, or pending) into OUT/index.csv, and OUT/train.csv for kOpenSora,
// exactly as encode_manifest does at its end; returns the index's path. `options_json` is the
// run's cache_options_json (LatentCacheWriter::options_json). Throws Error for a row outside the
// table or a folder that is not a cache.
std::string merge_cache_index(const ManifestTable& table, const std::vector<CacheRow>& rows,
                              const LatentCacheOptions& o, const std::string& options_json);

}  // namespace vvae
