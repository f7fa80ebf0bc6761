// The latent cache (encode_manifest, the cache writer, scans and verification) and manifests.
#include "binding_util.hpp"
#include "vvae/latent_cache.hpp"

namespace vvae_python {
namespace {

using namespace nb::literals;

const char* cache_status_text(vvae::CacheRow::Status s) {
  switch (s) {
    case vvae::CacheRow::Status::kOk:
      return "ok";
    case vvae::CacheRow::Status::kFailed:
      return "failed";
    default:
      return "pending";
  }
}

std::string shape_x_text(const vvae::Shape& s) {
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) t += (i ? "x" : "") + std::to_string(s[i]);
  return t;
}

// A settled row as the index writes it (latent_shape as "1x16x3x32x32"), with what the run
// knows beside: resumed, duplicate, seconds, notes, warnings.
nb::dict cache_row_dict(const vvae::CacheRow& r) {
  nb::dict d;
  d["row"] = r.entry.row;
  d["path"] = r.entry.path;
  d["status"] = cache_status_text(r.status);
  d["latents_path"] = r.status == vvae::CacheRow::Status::kOk ? r.latents_path : std::string();
  d["latent_shape"] = shape_x_text(r.latent_shape);
  d["error"] = r.error;
  d["latent_key"] = r.key;
  d["resumed"] = r.resumed;
  d["duplicate"] = r.duplicate;
  d["seconds"] = r.seconds;
  d["notes"] = r.notes;
  d["warnings"] = r.warnings;
  d["plan"] = r.plan;
  return d;
}

// The other way, for merge_cache_index: row, path, status, latents_path, latent_shape, error,
// latent_key (what cache_row_dict writes; other keys are ignored).
vvae::CacheRow cache_row_of(nb::handle obj) {
  if (!nb::isinstance<nb::dict>(obj))
    throw nb::type_error(("a cache row must be a dict, got " + python_type_name(obj)).c_str());
  nb::dict d = nb::borrow<nb::dict>(obj);
  const auto text = [&](const char* key, bool required) -> std::string {
    if (!d.contains(key)) {
      if (required) throw nb::value_error((std::string("a cache row lacks '") + key + "'").c_str());
      return "";
    }
    const nb::object v = d[key];
    if (v.is_none()) return "";
    return nb::cast<std::string>(nb::str(v));
  };
  vvae::CacheRow r;
  if (!d.contains("row")) throw nb::value_error("a cache row lacks 'row'");
  r.entry.row = nb::cast<int64_t>(nb::object(d["row"]));
  r.entry.path = text("path", true);
  const std::string status = text("status", true);
  if (status == "ok")
    r.status = vvae::CacheRow::Status::kOk;
  else if (status == "failed")
    r.status = vvae::CacheRow::Status::kFailed;
  else if (status == "pending")
    r.status = vvae::CacheRow::Status::kPending;
  else
    throw nb::value_error(
        ("a cache row's status must be ok, failed or pending, got '" + status + "'").c_str());
  r.latents_path = text("latents_path", false);
  r.error = text("error", false);
  r.key = text("latent_key", false);
  const std::string shape = text("latent_shape", false);
  size_t at = 0;
  while (at < shape.size()) {
    size_t end = shape.find('x', at);
    if (end == std::string::npos) end = shape.size();
    try {
      r.latent_shape.push_back(std::stoll(shape.substr(at, end - at)));
    } catch (const std::exception&) {
      throw nb::value_error(
          ("bad latent_shape '" + shape + "' (expected e.g. 1x16x3x32x32)").c_str());
    }
    at = end + 1;
  }
  if (r.status == vvae::CacheRow::Status::kOk && (r.latents_path.empty() || r.key.empty()))
    throw nb::value_error(("an ok cache row (row " + std::to_string(r.entry.row) +
                           ") needs latents_path and latent_key")
                              .c_str());
  return r;
}

// Everything but the model and manifest, as the CLI's `encode --manifest` sets them.
vvae::LatentCacheOptions cache_options(const std::string& out_dir, bool resume, int64_t num_frames,
                                       int64_t frame_interval, double fps_max,
                                       const std::string& resolution, int64_t height, int64_t width,
                                       bool sample, uint64_t seed, const std::string& format,
                                       const std::string& shard, const std::string& precision,
                                       const std::string& conv_algorithm,
                                       const std::vector<std::string>& weights_files,
                                       const std::vector<std::string>& inputs,
                                       const nb::object& max_memory) {
  vvae::LatentCacheOptions o;
  o.max_memory = memory_cap(max_memory);
  o.out_dir = out_dir;
  o.resume = resume;
  o.clip = clip_options(num_frames, frame_interval, fps_max, resolution, height, width);
  o.encode = encode_options(sample, seed);
  o.compute.precision = parse_precision(precision);
  o.compute.conv_algorithm = parse_conv_algorithm(conv_algorithm);
  checked([&] {
    o.format = vvae::parse_cache_format(format);
    if (!shard.empty()) o.shard = vvae::parse_shard(shard);
    return 0;
  });
  o.weights_files = weights_files;
  for (const auto& f : inputs) o.inputs.add(f);
  return o;
}

}  // namespace

void bind_cache(nb::module_& m) {
  // --- the latent cache ----------------------------------------------------------------------
#define VVAE_CACHE_ARGS                                                                           \
  "out_dir"_a, "resume"_a = false, "num_frames"_a = 0, "frame_interval"_a = 1, "fps_max"_a = 0.0, \
               "resolution"_a = "", "height"_a = 0, "width"_a = 0, "sample"_a = false,            \
               "seed"_a = 0, "format"_a = "safetensors", "shard"_a = "", "precision"_a = "fp32",  \
               "conv_algorithm"_a = "auto", "weights_files"_a = std::vector<std::string>{},       \
               "inputs"_a = std::vector<std::string>{}, "max_memory"_a = nb::none()
  m.def(
      "encode_manifest",
      [](const vvae::Model& model, const std::string& manifest, const std::string& out_dir,
         bool resume, int64_t num_frames, int64_t frame_interval, double fps_max,
         const std::string& resolution, int64_t height, int64_t width, bool sample, uint64_t seed,
         const std::string& format, const std::string& shard, const std::string& precision,
         const std::string& conv_algorithm, const std::vector<std::string>& weights_files,
         const std::vector<std::string>& inputs, nb::object max_memory, nb::object progress) {
        vvae::LatentCacheOptions o = cache_options(
            out_dir, resume, num_frames, frame_interval, fps_max, resolution, height, width, sample,
            seed, format, shard, precision, conv_algorithm, weights_files, inputs, max_memory);
        // The progress callback runs under the GIL between clips; an exception it raises (or
        // Ctrl-C) stops the run there: the latents written so far stay, index.csv is not merged.
        std::optional<nb::python_error> stopped;
        struct Stop {};
        const vvae::CacheProgress report = [&](const vvae::CacheRow& r, int64_t done,
                                               int64_t total) {
          nb::gil_scoped_acquire gil;
          if (PyErr_CheckSignals() != 0) {
            stopped.emplace();
            throw Stop{};
          }
          if (progress.is_none()) return;
          try {
            progress(cache_row_dict(r), done, total);
          } catch (nb::python_error& e) {
            stopped.emplace(std::move(e));
            throw Stop{};
          }
        };
        std::optional<vvae::CacheRunResult> result;
        {
          nb::gil_scoped_release release;
          vvae::set_num_threads(g_threads.load());
          try {
            const vvae::ManifestTable table = vvae::read_manifest_table(manifest);
            o.inputs.add(manifest);
            for (const vvae::ManifestEntry& e : table.entries) o.inputs.add(e.path);
            result = vvae::encode_manifest(model, table, o, report);
          } catch (const Stop&) {
          }
        }
        if (stopped) {
          stopped->restore();
          throw nb::python_error();
        }
        nb::list rows;
        for (const vvae::CacheRow& r : result->rows) rows.append(cache_row_dict(r));
        nb::dict d;
        d["rows"] = rows;
        d["encoded"] = result->encoded;
        d["resumed"] = result->resumed;
        d["duplicates"] = result->duplicates;
        d["failed"] = result->failed;
        d["index_path"] = result->index_path;
        d["wall_seconds"] = result->wall_seconds;
        return d;
      },
      "model"_a, "manifest"_a, VVAE_CACHE_ARGS, "progress"_a = nb::none(),
      "`vvae encode --manifest`: every row of the CSV into the cache folder out_dir and its "
      "index.csv; returns {'rows', 'encoded', 'resumed', 'duplicates', 'failed', 'index_path', "
      "'wall_seconds'}.");

  nb::class_<vvae::LatentCacheWriter>(m, "LatentCacheWriter")
      .def(
          "__init__",
          [](vvae::LatentCacheWriter* self, const vvae::Model& model, const std::string& out_dir,
             bool resume, int64_t num_frames, int64_t frame_interval, double fps_max,
             const std::string& resolution, int64_t height, int64_t width, bool sample,
             uint64_t seed, const std::string& format, const std::string& shard,
             const std::string& precision, const std::string& conv_algorithm,
             const std::vector<std::string>& weights_files, const std::vector<std::string>& inputs,
             nb::object max_memory) {
            const vvae::LatentCacheOptions o =
                cache_options(out_dir, resume, num_frames, frame_interval, fps_max, resolution,
                              height, width, sample, seed, format, shard, precision, conv_algorithm,
                              weights_files, inputs, max_memory);
            nb::gil_scoped_release release;
            new (self) vvae::LatentCacheWriter(model, o);
          },
          "model"_a, VVAE_CACHE_ARGS, nb::keep_alive<1, 2>(),
          "The per-clip steps of encode_manifest (vvae::LatentCacheWriter); keeps the model.")
      .def_prop_ro("options_json", &vvae::LatentCacheWriter::options_json)
      .def(
          "encode_row",
          [](vvae::LatentCacheWriter& self, int64_t row, const std::string& path) {
            if (row < 0) throw nb::value_error("row must be >= 0 (a 0-based manifest row)");
            vvae::ManifestEntry e;
            e.row = row;
            e.path = path;
            const vvae::CacheRow r = [&] {
              nb::gil_scoped_release release;
              vvae::set_num_threads(g_threads.load());
              return self.encode_row(e);
            }();
            return cache_row_dict(r);
          },
          "row"_a, "path"_a,
          "Settles one manifest row (row: its 0-based number; path: as the manifest has it) and "
          "returns its index row; a clip that fails comes back with status 'failed'.");

  m.def(
      "merge_cache_index",
      [](const std::string& manifest, nb::handle rows, const std::string& out_dir,
         const std::string& options_json, const std::string& format) {
        vvae::LatentCacheOptions o;
        o.out_dir = out_dir;
        o.format = checked([&] { return vvae::parse_cache_format(format); });
        std::vector<vvae::CacheRow> settled;
        for (nb::handle r : rows) settled.push_back(cache_row_of(r));
        nb::gil_scoped_release release;
        const vvae::ManifestTable table = vvae::read_manifest_table(manifest);
        o.inputs.add(manifest);
        for (const vvae::ManifestEntry& e : table.entries) o.inputs.add(e.path);
        return vvae::merge_cache_index(table, settled, o, options_json);
      },
      "manifest"_a, "rows"_a, "out_dir"_a, "options_json"_a, "format"_a = "safetensors",
      "Merges settled rows of the manifest into out_dir/index.csv (and train.csv) as "
      "encode_manifest does; returns the index's path.");
  m.def(
      "prepare_cache_folder",
      [](const std::string& out_dir, const std::string& format,
         const std::vector<std::string>& inputs) {
        vvae::LatentCacheOptions o;
        o.out_dir = out_dir;
        o.format = checked([&] { return vvae::parse_cache_format(format); });
        for (const auto& f : inputs) o.inputs.add(f);
        nb::gil_scoped_release release;
        vvae::prepare_cache_folder(o);
      },
      "out_dir"_a, "format"_a = "safetensors", "inputs"_a = std::vector<std::string>{},
      "Fails (vvae.Error) when out_dir cannot be a cache folder; makes it when its parent "
      "exists.");
  m.def("cache_options_id", &vvae::cache_options_id, "options_json"_a);
#undef VVAE_CACHE_ARGS

  m.def(
      "read_manifest",
      [](const std::string& manifest) {
        const vvae::ManifestTable table = [&] {
          nb::gil_scoped_release release;
          return vvae::read_manifest_table(manifest);
        }();
        nb::list out;
        for (const vvae::ManifestEntry& e : table.entries) {
          nb::dict d;
          for (size_t c = 0; c < table.header.size(); ++c)
            d[table.header[c].c_str()] = table.rows[static_cast<size_t>(e.row)][c];
          d["row"] = e.row;
          d["path"] = e.path;
          out.append(d);
        }
        return out;
      },
      "manifest"_a,
      "The rows of a manifest CSV as dicts of its columns (all text), with 'row' (0-based).");
}

}  // namespace vvae_python
