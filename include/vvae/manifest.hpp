#pragma once
// Manifests (Open-Sora's dataset CSV: a header row with a `path` column, other columns
// ignored), shards and output names.
//
// CSV as RFC 4180: comma-separated, fields may be double-quoted (with "" for a quote and line
// breaks inside quotes), CRLF or LF line ends, blank lines skipped. Paths are used as written
// (relative paths are relative to the current folder, as in Open-Sora).

#include <cstdint>
#include <string>
#include <vector>

namespace vvae {

std::vector<std::vector<std::string>> parse_csv(const std::string& text);
// One CSV line (with its "\n"): fields holding a comma, a quote or a line break are quoted,
// quotes doubled, so parse_csv() gives the fields back exactly.
std::string format_csv_row(const std::vector<std::string>& fields);

struct ManifestEntry {
  int64_t row = 0;   // 0-based data row (the header is not counted)
  std::string path;  // as written
  std::string name;  // output name, unique within the manifest
};

// A manifest as a table: every column kept (for outputs that carry the input rows along).
struct ManifestTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;  // data rows, each padded to the header's width
  size_t path_column = 0;
  std::vector<ManifestEntry> entries;  // one per row, named as read_manifest() names them
};

// Reads a manifest CSV; throws Error when it cannot be read or has no `path` column.
std::vector<ManifestEntry> read_manifest(const std::string& csv_path);
// The same, keeping every column of every row.
ManifestTable read_manifest_table(const std::string& csv_path);
// Entries for paths given on the command line.
std::vector<ManifestEntry> entries_from_paths(const std::vector<std::string>& paths);

// Output names: the file name without its extension (as Open-Sora's inference.py); a name
// already taken by an earlier row gets "-<row>" appended (then "-<row>-2", ...).
void assign_names(std::vector<ManifestEntry>& entries);

struct Shard {
  int64_t index = 0;  // 0-based
  int64_t count = 1;
};
// "i/n" with 0 <= i < n, or "auto": the task of a Slurm job array, i = SLURM_ARRAY_TASK_ID -
// SLURM_ARRAY_TASK_MIN (divided by SLURM_ARRAY_TASK_STEP) of n = SLURM_ARRAY_TASK_COUNT.
Shard parse_shard(const std::string& text);
// The entries of one shard: rows with row % count == index.
std::vector<ManifestEntry> shard_entries(const std::vector<ManifestEntry>& all, const Shard& s);

}  // namespace vvae
