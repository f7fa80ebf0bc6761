#include "vvae/manifest.hpp"

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "vvae/error.hpp"

namespace vvae {

namespace fs = std::filesystem;

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  auto end_field = [&] {
    row.push_back(field);
    field.clear();
    field_started = false;
  };
  auto end_row = [&] {
    end_field();
    const bool blank = row.size() == 1 && row[0].empty();
    if (!blank) rows.push_back(row);
    row.clear();
  };
  size_t i = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 byte order mark
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
    } else if (c == ',') {
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_row();
    } else {
      field += c;
      field_started = true;
    }
  }
  if (quoted) fail("CSV: a quoted field is not closed");
  if (!field.empty() || !row.empty()) end_row();
  return rows;
}

ManifestTable read_manifest_table(const std::string& csv_path) {
  std::ifstream in(csv_path, std::ios::binary);
  if (!in) fail("cannot read manifest '", csv_path, "': no such file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::vector<std::vector<std::string>> rows;
  try {
    rows = parse_csv(buffer.str());
  } catch (const Error& e) {
    fail("manifest '", csv_path, "': ", e.what());
  }
  if (rows.empty()) fail("manifest '", csv_path, "' is empty (expected a header with 'path')");
  ManifestTable table;
  table.header = rows[0];
  table.path_column = table.header.size();
  for (size_t i = 0; i < table.header.size(); ++i)
    if (table.header[i] == "path") table.path_column = i;
  if (table.path_column == table.header.size())
    fail("manifest '", csv_path, "' has no 'path' column in its header");
  for (size_t r = 1; r < rows.size(); ++r) {
    if (table.path_column >= rows[r].size() || rows[r][table.path_column].empty())
      fail("manifest '", csv_path, "': row ", r + 1, " has no path");
    table.entries.push_back({static_cast<int64_t>(r - 1), rows[r][table.path_column], ""});
    if (rows[r].size() < table.header.size()) rows[r].resize(table.header.size());
    table.rows.push_back(std::move(rows[r]));
  }
  assign_names(table.entries);
  return table;
}

std::vector<ManifestEntry> read_manifest(const std::string& csv_path) {
  return read_manifest_table(csv_path).entries;
}

std::string format_csv_row(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += ',';
    const std::string& f = fields[i];
    if (f.find_first_of(",\"\r\n") == std::string::npos) {
      line += f;
      continue;
    }
    line += '"';
    for (char c : f) {
      if (c == '"') line += '"';
      line += c;
    }
    line += '"';
  }
  return line + "\n";
}

std::vector<ManifestEntry> entries_from_paths(const std::vector<std::string>& paths) {
  std::vector<ManifestEntry> entries;
  for (size_t i = 0; i < paths.size(); ++i)
    entries.push_back({static_cast<int64_t>(i), paths[i], ""});
  assign_names(entries);
  return entries;
}

void assign_names(std::vector<ManifestEntry>& entries) {
  std::set<std::string> taken;
  for (auto& e : entries) {
    std::string stem = fs::path(e.path).stem().string();
    if (stem.empty()) stem = "clip";
    std::string name = stem;
    if (taken.count(name)) name = stem + "-" + std::to_string(e.row);
    for (int k = 2; taken.count(name); ++k)
      name = stem + "-" + std::to_string(e.row) + "-" + std::to_string(k);
    taken.insert(name);
    e.name = name;
  }
}

namespace {

bool whole_number(const std::string& part, int64_t* out) {
  const char* end = part.data() + part.size();
  const auto [ptr, ec] = std::from_chars(part.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

// A Slurm job array's task: i = (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / step of
// n = SLURM_ARRAY_TASK_COUNT tasks (--array=0-9, 1-10 and 0-18:2 all give 0..9 of 10).
Shard slurm_shard() {
  const auto number = [](const char* name, int64_t fallback, bool required) {
    const char* v = std::getenv(name);
    int64_t out = fallback;
    if (v == nullptr || *v == '\0') {
      if (required)
        fail("--shard auto: ", name, " is not set (not a Slurm job array task): give --shard i/n");
      return out;
    }
    if (!whole_number(v, &out)) fail("--shard auto: ", name, "='", v, "' is not a whole number");
    return out;
  };
  const int64_t id = number("SLURM_ARRAY_TASK_ID", 0, true);
  const int64_t count = number("SLURM_ARRAY_TASK_COUNT", 0, true);
  const int64_t min = number("SLURM_ARRAY_TASK_MIN", 0, false);
  const int64_t step = number("SLURM_ARRAY_TASK_STEP", 1, false);
  Shard s;
  s.count = count;
  if (step < 1 || (id - min) % step != 0) {
    s.index = -1;
  } else {
    s.index = (id - min) / step;
  }
  if (count < 1 || s.index < 0 || s.index >= count)
    fail("--shard auto: task ", id, " of an array of ", count, " from ", min, " in steps of ", step,
         " is not a shard i of n (the array's ids must be evenly spaced): give --shard i/n");
  return s;
}

}  // namespace

Shard parse_shard(const std::string& text) {
  if (text == "auto") return slurm_shard();
  const size_t slash = text.find('/');
  Shard s;
  if (slash == std::string::npos || !whole_number(text.substr(0, slash), &s.index) ||
      !whole_number(text.substr(slash + 1), &s.count))
    fail("bad --shard '", text, "': expected i/n, e.g. 0/4");
  if (s.count < 1 || s.index < 0 || s.index >= s.count)
    fail("bad --shard '", text, "': need 0 <= i < n");
  return s;
}

std::vector<ManifestEntry> shard_entries(const std::vector<ManifestEntry>& all, const Shard& s) {
  std::vector<ManifestEntry> out;
  for (const auto& e : all)
    if (e.row % s.count == s.index) out.push_back(e);
  return out;
}

}  // namespace vvae
