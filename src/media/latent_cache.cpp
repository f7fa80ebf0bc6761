#include "vvae/latent_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "io/atomic_file.hpp"
#include "io/utf8.hpp"
#include "media/cache_files.hpp"
#include "media/clip_source.hpp"
#include "media/file_lock.hpp"
#include "media/folders.hpp"
#include "media/torch_file.hpp"
#include "vvae/clip.hpp"
#include "vvae/error.hpp"
#include "vvae/latent.hpp"
#include "vvae/memory.hpp"
#include "vvae/safetensors.hpp"

namespace vvae {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kIndexName = "index.csv";
constexpr const char* kTrainName = "train.csv";
// The columns the index adds after the input's own (an input column of the same name is
// replaced by ours).
const std::vector<std::string>& our_columns() {
  static const std::vector<std::string> columns = {"latents_path", "latent_shape", "status",
                                                   "error",        "latent_key",   "cache_options"};
  return columns;
}

bool is_our_column(const std::string& c) {
  const auto& ours = our_columns();
  return std::find(ours.begin(), ours.end(), c) != ours.end();
}

void check_real_folder_or_absent(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return;
  if (S_ISLNK(st.st_mode))
    fail("'", path, "' is a symbolic link: vvae writes only into real folders inside the ",
         "cache folder (remove the link, or write to another folder)");
  fail("'", path, "' is a file, not a folder: remove it, or write to another folder");
}

std::string shape_text(const Shape& s) {
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) t += (i ? "x" : "") + std::to_string(s[i]);
  return t;
}

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The existing index as rows of column -> value; throws when the file is not an index vvae
// wrote (its header lacks our columns), which is never replaced.
struct IndexTable {
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
};

std::optional<IndexTable> read_index(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  if (!S_ISREG(st.st_mode))
    fail("'", path, "' is not a regular file: move it away, or write to another folder");
  std::vector<std::vector<std::string>> rows;
  try {
    rows = parse_csv(read_text(path));
  } catch (const Error& e) {
    fail("'", path, "' is not an index vvae wrote (", e.what(),
         "): move it away, or write to another folder");
  }
  const bool ours =
      !rows.empty() &&
      std::all_of(our_columns().begin(), our_columns().end(),
                  [&](const std::string& c) {
                    return std::find(rows[0].begin(), rows[0].end(), c) != rows[0].end();
                  }) &&
      std::find(rows[0].begin(), rows[0].end(), "path") != rows[0].end();
  if (!ours)
    fail("'", path, "' is not an index vvae wrote (its header lacks path, ",
         "latents_path, status, ...): move it away, or write to another folder");
  IndexTable t;
  t.header = rows[0];
  for (size_t r = 1; r < rows.size(); ++r) {
    std::map<std::string, std::string> row;
    for (size_t c = 0; c < t.header.size(); ++c)
      row[t.header[c]] = c < rows[r].size() ? rows[r][c] : "";
    t.rows.push_back(std::move(row));
  }
  return t;
}

// Everything a run needs about its cache folder.
struct Cache {
  const LatentCacheOptions& o;
  std::string out_abs;  // absolute, normalised
  std::string options_json;
  std::string options_id;

  std::string path(const std::string& rel) const { return (fs::path(out_abs) / rel).string(); }
  std::string latent_rel(const std::string& key) const {
    return cache_latent_path(options_id, key, o.format);
  }
  std::string lock_path(const std::string& key) const {
    const fs::path p = fs::path(path(latent_rel(key)));
    return (p.parent_path() / ("." + key + ".vvae-lock")).string();
  }
};

Json metadata_json(const Metadata& meta) {
  Json j = Json::object();
  for (const auto& [k, v] : meta) j[utf8_or_escaped(k)] = utf8_or_escaped(v);
  return j;
}

// Writes the latent of one clip in the cache's format (atomically: temporary, then rename).
Shape write_cached_latent(const std::string& path, const EncodeResult& enc, const Metadata& meta,
                          CacheFormat format) {
  if (format == CacheFormat::kSafetensors) {
    write_latent_file(path, enc, meta);
    return enc.z.shape();
  }
  // Open-Sora's dataset stacks what torch.load returns into (B, C, T, H, W): one clip is
  // (C, T, H, W).
  if (enc.z.rank() != 5 || enc.z.dim(0) != 1)
    fail("internal: a cached latent of shape ", to_string(enc.z.shape()));
  const Shape shape(enc.z.shape().begin() + 1, enc.z.shape().end());
  const Tensor z = enc.z.reshape(shape);
  Json m = metadata_json(meta);
  m["shape"] = shape;
  write_torch_file(path, z, {{kCacheMetadataRecord, m.dump()}});
  return shape;
}

// Every file a settled row can point at, keyed by key: so duplicates share one result.
struct Settled {
  CacheRow::Status status = CacheRow::Status::kPending;
  Shape shape;
  std::string error;
};

class Run {
 public:
  // `model` may be null for a run that only merges the index (merge_cache_index).
  Run(const Model* model, const ManifestTable& table, const LatentCacheOptions& o,
      const CacheProgress& progress, const std::string& options_json)
      : model_(model), table_(table), o_(o), progress_(progress), cache_{o, "", "", ""} {
    cache_.out_abs = fs::absolute(o.out_dir).lexically_normal().string();
    while (cache_.out_abs.size() > 1 && cache_.out_abs.back() == '/') cache_.out_abs.pop_back();
    cache_.options_json = options_json;
    cache_.options_id = cache_options_id(cache_.options_json);
    settled_.resize(table.rows.size());
    identity_.resize(table.rows.size());
  }

  const std::string& options_json() const { return cache_.options_json; }

  // The latents folders, and the temporaries of killed runs removed.
  void prepare_latents_folders() {
    make_real_folder(cache_.path("latents"), "cache folder");
    make_real_folder(cache_.path("latents/" + cache_.options_id), "cache folder");
    sweep_temporaries();
  }

  // One row, settled as run() settles a row that is not a duplicate (LatentCacheWriter).
  CacheRow settle_entry(const ManifestEntry& e) {
    if (e.row < 0) fail("internal: a manifest row of number ", e.row);
    const size_t i = static_cast<size_t>(e.row);
    CacheRow& r = row(i);
    r = CacheRow{};
    r.entry = e;
    try {
      identity_[i] = source_identity(e.path);
      r.key = cache_clip_key(cache_.options_json, identity_[i]);
      r.latents_path = cache_.path(cache_.latent_rel(r.key));
      if (!settle(i, /*wait=*/false)) settle(i, /*wait=*/true);
    } catch (const std::exception& ex) {
      r.status = CacheRow::Status::kFailed;
      r.error = one_line(ex.what());
    }
    CacheRow out = r;
    settled_[i].reset();  // a writer keeps nothing per row
    return out;
  }

  // Rows settled elsewhere (merge_cache_index).
  void take_rows(const std::vector<CacheRow>& rows) {
    for (const CacheRow& r : rows) {
      if (r.entry.row < 0 || static_cast<size_t>(r.entry.row) >= table_.rows.size())
        fail("row ", r.entry.row, " (", r.entry.path, ") is not a row of the manifest (",
             table_.rows.size(), " rows)");
      const auto& expected = table_.entries[static_cast<size_t>(r.entry.row)].path;
      if (r.entry.path != expected)
        fail("row ", r.entry.row, " of the manifest is '", expected, "', not '", r.entry.path, "'");
      row(static_cast<size_t>(r.entry.row)) = r;
    }
  }

  CacheRunResult run() {
    const auto start = Clock::now();
    last_merge_ = start;
    const std::vector<ManifestEntry> mine = shard_entries(table_.entries, o_.shard);
    total_ = static_cast<int64_t>(mine.size());
    prepare_latents_folders();

    std::vector<size_t> deferred, duplicates;
    std::map<std::string, size_t> first_of_key;
    for (const ManifestEntry& e : mine) {
      const size_t i = static_cast<size_t>(e.row);
      CacheRow& r = row(i);
      r.entry = e;
      try {
        identity_[i] = source_identity(e.path);
        r.key = cache_clip_key(cache_.options_json, identity_[i]);
        r.latents_path = cache_.path(cache_.latent_rel(r.key));
        if (const auto it = first_of_key.find(r.key); it != first_of_key.end()) {
          r.duplicate = true;
          duplicates.push_back(i);
          continue;  // settled with the row it repeats
        }
        first_of_key[r.key] = i;
        if (!settle(i, /*wait=*/false)) {
          deferred.push_back(i);
          continue;
        }
      } catch (const std::exception& ex) {
        r.status = CacheRow::Status::kFailed;
        r.error = one_line(ex.what());
      }
      report(i);
      maybe_merge();
    }
    // Clips another run was writing: wait for it, then take its latent (or write one).
    for (size_t i : deferred) {
      try {
        settle(i, /*wait=*/true);
      } catch (const std::exception& ex) {
        row(i).status = CacheRow::Status::kFailed;
        row(i).error = one_line(ex.what());
      }
      report(i);
    }
    for (size_t i : duplicates) {
      CacheRow& r = row(i);
      const CacheRow& first = row(first_of_key.at(r.key));
      r.status = first.status;
      r.latent_shape = first.latent_shape;
      r.error = first.error;
      r.resumed = first.resumed;
      report(i);
    }
    merge_index();

    CacheRunResult result;
    for (const ManifestEntry& e : mine) {
      const CacheRow& r = row(static_cast<size_t>(e.row));
      result.rows.push_back(r);
      if (r.status == CacheRow::Status::kFailed)
        ++result.failed;
      else if (r.duplicate)
        ++result.duplicates;
      else if (r.resumed)
        ++result.resumed;
      else
        ++result.encoded;
    }
    result.index_path = cache_.path(kIndexName);
    result.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
  }

  // Rewrites index.csv (and train.csv) under the index lock; see the header.
  void merge_index() {
    const FileLock lock = FileLock::lock(cache_.path(".index.vvae-lock"));
    merge_index_locked();
  }

 private:
  CacheRow& row(size_t i) {
    if (i >= settled_.size()) {
      settled_.resize(i + 1);
      identity_.resize(i + 1);
    }
    if (!settled_[i]) settled_[i].emplace();
    return *settled_[i];
  }

  void report(size_t i) {
    ++done_;
    if (progress_) progress_(row(i), done_, total_);
  }

  void maybe_merge() {
    if (o_.index_every_seconds <= 0) return;
    const double since = std::chrono::duration<double>(Clock::now() - last_merge_).count();
    if (since >= o_.index_every_seconds) merge_index();
  }

  // Settles row i: takes a valid latent that is there, or encodes the clip under its lock.
  // Returns false (without waiting) when another run holds the lock.
  bool settle(size_t i, bool wait) {
    CacheRow& r = row(i);
    const auto start = Clock::now();
    // No output may replace one of the run's inputs, under any name.
    o_.inputs.check_output_file(r.latents_path);
    if (o_.resume) {
      if (const auto shape = cached_latent_shape(r.latents_path, r.key, o_.format)) {
        r.status = CacheRow::Status::kOk;
        r.resumed = true;
        r.latent_shape = *shape;
        // A run killed after writing the latent, before releasing its lock, left the lock file.
        FileLock::remove_abandoned(cache_.lock_path(r.key));
        return true;
      }
    }
    make_real_folder(fs::path(r.latents_path).parent_path().string(), "cache folder");
    std::optional<FileLock> lock;
    if (wait)
      lock.emplace(FileLock::lock(cache_.lock_path(r.key)));
    else
      lock = FileLock::try_lock(cache_.lock_path(r.key));
    if (!lock) return false;
    // A clip we waited for was just written by the run that held it: take its latent.
    if (wait || o_.resume) {
      if (const auto shape = cached_latent_shape(r.latents_path, r.key, o_.format)) {
        r.status = CacheRow::Status::kOk;
        r.resumed = true;
        r.latent_shape = *shape;
        return true;
      }
    }
    encode(r);
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return true;
  }

  void encode(CacheRow& r) {
    const ManifestEntry& e = r.entry;
    ClipSource source = open_clip_source(e.path, o_.clip, shape_rules(*model_));
    const Shape shape = source.shape();
    const ClipIo io = source.io();
    r.notes = source.clip.notes;
    r.warnings = source.clip.warnings;
    EncodeOptions options = o_.encode;
    if (o_.max_memory > 0) {
      const FittedPlan fit = model_->fit_encode(shape, o_.max_memory, io);
      options.tiling = fit.tiling;
      r.plan = fit.summary;
    } else {
      // Refuse at once what cannot fit, rather than fail minutes into the run.
      check_memory_fits(model_->plan_encode(shape, std::nullopt, io).estimated_peak_bytes,
                        cat("encoding ", to_string(shape)));
    }
    const EncodeResult enc = source.whole()
                                 ? model_->encode(source.clip.x, options)
                                 : model_->encode_streamed(shape, source.frames(), options);
    if (const int64_t bad = count_non_finite(enc.z); bad > 0)
      r.warnings.push_back(cat("the latent holds ", bad, " NaN or infinite values (of ",
                               enc.z.numel(), "): the model overflowed"));
    Metadata meta = latent_metadata(model_->info(), shape, options, &source.clip);
    meta["cache_key"] = r.key;
    meta["cache_options"] = cache_.options_json;
    meta["source_identity"] = identity_[static_cast<size_t>(e.row)];
    r.latent_shape = write_cached_latent(r.latents_path, enc, meta, o_.format);
    r.status = CacheRow::Status::kOk;
  }

  // Temporaries of killed runs: removed when no run holds their clip's lock (a temporary of a
  // live run on another machine has its lock held, whatever its process id says here).
  void sweep_temporaries() {
    const fs::path dir = cache_.path("latents/" + cache_.options_id);
    std::error_code ec;
    for (const auto& sub : fs::directory_iterator(dir, ec)) {
      struct stat st {};
      if (::lstat(sub.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
      std::error_code ec2;
      for (const auto& f : fs::directory_iterator(sub.path(), ec2)) {
        const std::string name = f.path().filename().string();
        const size_t at = name.find(".tmp-");
        if (at == std::string::npos) continue;
        const std::string target = name.substr(0, at);
        const std::string key = fs::path(target).stem().string();
        int64_t pid = 0;
        if (!is_temporary_of(name, target, &pid) || !process_is_gone(pid)) continue;
        const auto lock = FileLock::try_lock((sub.path() / ("." + key + ".vvae-lock")).string());
        if (lock && ::lstat(f.path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
          ::unlink(f.path().c_str());
      }
    }
  }

  void merge_index_locked() {
    last_merge_ = Clock::now();
    for (const char* name : {kIndexName, kTrainName})
      remove_stale_temporaries_of(cache_.path(name));
    const std::optional<IndexTable> old = read_index(cache_.path(kIndexName));

    std::vector<std::string> columns;
    for (const std::string& c : table_.header)
      if (!is_our_column(c) && std::find(columns.begin(), columns.end(), c) == columns.end())
        columns.push_back(c);
    if (old)
      for (const std::string& c : old->header)
        if (!is_our_column(c) && std::find(columns.begin(), columns.end(), c) == columns.end())
          columns.push_back(c);

    // Old rows by (path, occurrence among rows of that path).
    std::map<std::pair<std::string, int>, size_t> old_by_id;
    std::vector<bool> old_used;
    if (old) {
      std::map<std::string, int> seen;
      for (size_t k = 0; k < old->rows.size(); ++k) {
        const std::string& p = old->rows[k].at("path");
        old_by_id[{p, seen[p]++}] = k;
      }
      old_used.assign(old->rows.size(), false);
    }

    std::vector<std::map<std::string, std::string>> rows;
    std::map<std::string, int> seen;
    for (size_t i = 0; i < table_.rows.size(); ++i) {
      std::map<std::string, std::string> out;
      const CacheRow* r = i < settled_.size() && settled_[i] ? &*settled_[i] : nullptr;
      const std::string& p = table_.entries[i].path;
      const auto it = old_by_id.find({p, seen[p]++});
      const std::map<std::string, std::string>* prev = nullptr;
      if (it != old_by_id.end()) {
        prev = &old->rows[it->second];
        old_used[it->second] = true;
        out = *prev;  // columns only the old index has
      }
      for (size_t c = 0; c < table_.header.size(); ++c)
        if (!is_our_column(table_.header[c])) out[table_.header[c]] = table_.rows[i][c];
      for (const std::string& c : our_columns()) out[c] = "";
      out["cache_options"] = cache_.options_id;
      if (r != nullptr && r->status != CacheRow::Status::kPending) {
        out["latent_key"] = r->key;
        if (r->status == CacheRow::Status::kOk) {
          out["status"] = "ok";
          out["latents_path"] = r->latents_path;
          out["latent_shape"] = shape_text(r->latent_shape);
        } else {
          out["status"] = "failed";
          out["error"] = r->error;
        }
      } else if (prev != nullptr && prev->at("cache_options") == cache_.options_id) {
        // Another run's row: an ok row stays ok while its latent is there and valid.
        const std::string& key = prev->at("latent_key");
        const std::string& status = prev->at("status");
        out["latent_key"] = key;
        if (status == "ok") {
          const std::string path = cache_.path(cache_.latent_rel(key));
          if (const auto shape = cached_latent_shape(path, key, o_.format)) {
            out["status"] = "ok";
            out["latents_path"] = path;
            out["latent_shape"] = shape_text(*shape);
          } else {
            out["status"] = "pending";
          }
        } else if (status == "failed") {
          out["status"] = "failed";
          out["error"] = prev->at("error");
        } else {
          out["status"] = "pending";
        }
      } else {
        out["status"] = "pending";
      }
      rows.push_back(std::move(out));
    }
    // Rows of other manifests (or of rows since removed) stay, as they were.
    if (old)
      for (size_t k = 0; k < old->rows.size(); ++k)
        if (!old_used[k]) rows.push_back(old->rows[k]);

    std::vector<std::string> header = columns;
    header.insert(header.end(), our_columns().begin(), our_columns().end());
    std::string text = format_csv_row(header);
    for (const auto& r : rows) {
      std::vector<std::string> fields;
      for (const std::string& c : header) {
        const auto f = r.find(c);
        fields.push_back(f == r.end() ? "" : f->second);
      }
      text += format_csv_row(fields);
    }
    write_text_file(cache_.path(kIndexName), text);

    if (o_.format == CacheFormat::kOpenSora) {
      // What Open-Sora's cached_video_text dataset reads: the rows it can train on. It reads
      // text_t5_path and text_clip_path for every row, so they must exist (empty: not cached).
      std::vector<std::string> train = columns;
      for (const char* c : {"latents_path", "text_t5_path", "text_clip_path"})
        if (std::find(train.begin(), train.end(), c) == train.end()) train.push_back(c);
      std::string csv = format_csv_row(train);
      for (const auto& r : rows) {
        if (r.at("status") != "ok" || r.at("cache_options") != cache_.options_id) continue;
        std::vector<std::string> fields;
        for (const std::string& c : train) {
          const auto f = r.find(c);
          fields.push_back(f == r.end() ? "" : f->second);
        }
        csv += format_csv_row(fields);
      }
      write_text_file(cache_.path(kTrainName), csv);
    }
  }

  const Model* model_;
  const ManifestTable& table_;
  const LatentCacheOptions& o_;
  const CacheProgress& progress_;
  Cache cache_;
  std::vector<std::optional<CacheRow>> settled_;  // by manifest row
  std::vector<std::string> identity_;             // source_identity, by manifest row
  int64_t done_ = 0, total_ = 0;
  Clock::time_point last_merge_;
};

}  // namespace

CacheFormat parse_cache_format(const std::string& text) {
  if (text == "safetensors") return CacheFormat::kSafetensors;
  if (text == "opensora") return CacheFormat::kOpenSora;
  fail("bad --format '", text, "': expected safetensors or opensora");
}

void prepare_cache_folder(const LatentCacheOptions& o) {
  const std::string& out = o.out_dir;
  if (out.empty()) fail("no output folder given (-o DIR)");
  if (fs::exists(out) && !fs::is_directory(out)) fail("output '", out, "' is a file, not a folder");
  if (!fs::exists(out)) {
    fs::path parent = fs::path(out).parent_path();
    if (fs::path(out).filename().empty()) parent = parent.parent_path();
    if (parent.empty()) parent = ".";
    if (!fs::is_directory(parent))
      fail("cannot create output folder '", out, "': folder '", parent.string(),
           "' does not exist");
    std::error_code ec;
    fs::create_directory(out, ec);
    if (ec) fail("cannot create output folder '", out, "': ", ec.message());
  }
  if (::access(out.c_str(), W_OK) != 0) fail("output folder '", out, "' is not writable");
  check_real_folder_or_absent((fs::path(out) / "latents").string());
  for (const char* name : {kIndexName, kTrainName}) {
    const std::string path = (fs::path(out) / name).string();
    o.inputs.check_output_file(path);
  }
  // Files in their place that vvae did not write are never replaced.
  read_index((fs::path(out) / kIndexName).string());
  const std::string train = (fs::path(out) / kTrainName).string();
  struct stat st {};
  if (o.format == CacheFormat::kOpenSora && ::lstat(train.c_str(), &st) == 0) {
    std::vector<std::vector<std::string>> rows;
    try {
      rows = parse_csv(read_text(train));
    } catch (const Error&) {
    }
    if (!S_ISREG(st.st_mode) || rows.empty() ||
        std::find(rows[0].begin(), rows[0].end(), "latents_path") == rows[0].end())
      fail("'", train, "' is not a train.csv vvae wrote: move it away, or write to another folder");
  }
}

CacheRunResult encode_manifest(const Model& model, const ManifestTable& table,
                               const LatentCacheOptions& o, const CacheProgress& progress) {
  prepare_cache_folder(o);
  return Run(&model, table, o, progress, cache_options_json(model.info(), o)).run();
}

struct LatentCacheWriter::Impl {
  LatentCacheOptions options;
  ManifestTable no_table;
  CacheProgress no_progress;
  Run run;
  Impl(const Model& model, const LatentCacheOptions& o)
      : options(o),
        run(&model, no_table, options, no_progress, cache_options_json(model.info(), o)) {}
};

LatentCacheWriter::LatentCacheWriter(const Model& model, const LatentCacheOptions& o) {
  prepare_cache_folder(o);
  impl_ = std::make_unique<Impl>(model, o);
  impl_->run.prepare_latents_folders();
}

LatentCacheWriter::~LatentCacheWriter() = default;

const std::string& LatentCacheWriter::options_json() const {
  return impl_->run.options_json();
}

CacheRow LatentCacheWriter::encode_row(const ManifestEntry& entry) {
  return impl_->run.settle_entry(entry);
}

std::string merge_cache_index(const ManifestTable& table, const std::vector<CacheRow>& rows,
                              const LatentCacheOptions& o, const std::string& options_json) {
  prepare_cache_folder(o);
  const CacheProgress no_progress;
  Run run(nullptr, table, o, no_progress, options_json);
  run.take_rows(rows);
  run.merge_index();
  return (fs::path(fs::absolute(o.out_dir).lexically_normal()) / kIndexName).string();
}

}  // namespace vvae
