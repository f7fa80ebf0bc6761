#include "vvae/manifest.hpp"

#include <charconv>
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

std::vector<ManifestEntry> read_manifest(const std::string& csv_path) {
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
  size_t column = rows[0].size();
  for (size_t i = 0; i < rows[0].size(); ++i)
    if (rows[0][i] == "path") column = i;
  if (column == rows[0].size())
    fail("manifest '", csv_path, "' has no 'path' column in its header");
  std::vector<ManifestEntry> entries;
  for (size_t r = 1; r < rows.size(); ++r) {
    if (column >= rows[r].size() || rows[r][column].empty())
      fail("manifest '", csv_path, "': row ", r + 1, " has no path");
    entries.push_back({static_cast<int64_t>(r - 1), rows[r][column], ""});
  }
  assign_names(entries);
  return entries;
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

Shard parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  Shard s;
  const auto whole_number = [](const std::string& part, int64_t* out) {
    const char* end = part.data() + part.size();
    const auto [ptr, ec] = std::from_chars(part.data(), end, *out);
    return ec == std::errc() && ptr == end;
  };
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
