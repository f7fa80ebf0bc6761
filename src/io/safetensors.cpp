#include "vvae/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/file_pages.hpp"
#include "io/atomic_file.hpp"
#include "io/half.hpp"
#include "io/mapped_file.hpp"
#include "io/utf8.hpp"
#include "vvae/error.hpp"
#include "vvae/limits.hpp"

static_assert(std::endian::native == std::endian::little, "vvae reads little-endian data");

namespace vvae {
namespace {

using json = nlohmann::json;

// The header size bound of the reference implementation.
constexpr int64_t kMaxHeaderBytes = 100'000'000;

int64_t dtype_size(const std::string& dtype) {
  static const std::map<std::string, int64_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8}};
  auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

// Parses the header JSON, refusing duplicate names (a plain parse would keep the last one).
json parse_header(const std::string& path, const char* begin, const char* end) {
  std::set<std::string> top_keys;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      if (!top_keys.insert(parsed.get<std::string>()).second && duplicate.empty())
        duplicate = parsed.get<std::string>();
    }
    return true;
  };
  limits::check_json_depth(begin, end, "'" + path + "': the safetensors header");
  json header;
  try {
    header = json::parse(begin, end, on_event);
  } catch (const json::exception& e) {
    fail("'", path, "': the safetensors header is not valid JSON (", e.what(), ")");
  }
  if (!duplicate.empty())
    fail("'", path, "': tensor '", duplicate, "' appears twice in the header");
  if (!header.is_object()) fail("'", path, "': the safetensors header is not a JSON object");
  return header;
}

Metadata parse_metadata(const std::string& path, const json& value) {
  if (!value.is_object()) fail("'", path, "': __metadata__ is not an object");
  Metadata metadata;
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string()) fail("'", path, "': __metadata__ value '", key, "' is not a string");
    metadata[key] = v.get<std::string>();
  }
  return metadata;
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const json& value,
                             int64_t data_bytes) {
  const auto bad = [&](const std::string& why) { fail("'", path, "': tensor '", name, "' ", why); };
  if (!value.is_object()) bad("is not described by an object");
  if (!value.contains("dtype") || !value["dtype"].is_string()) bad("has no dtype");
  if (!value.contains("shape") || !value["shape"].is_array()) bad("has no shape");
  if (!value.contains("data_offsets") || !value["data_offsets"].is_array() ||
      value["data_offsets"].size() != 2)
    bad("has no [begin, end] data_offsets");

  SafetensorsEntry e;
  e.name = name;
  e.dtype = value["dtype"].get<std::string>();
  const int64_t itemsize = dtype_size(e.dtype);
  if (itemsize == 0) bad("has unknown dtype '" + e.dtype + "'");

  int64_t count = 1;
  for (const json& d : value["shape"]) {
    if (!d.is_number_unsigned()) bad("has a shape entry that is not a non-negative integer");
    const uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (dim != 0 && count > std::numeric_limits<int64_t>::max() / static_cast<int64_t>(dim)))
      bad("has a shape too large to address");
    e.shape.push_back(static_cast<int64_t>(dim));
    count *= static_cast<int64_t>(dim);
  }
  if (count > std::numeric_limits<int64_t>::max() / itemsize)
    bad("has a shape too large to address");

  for (const json& o : value["data_offsets"])
    if (!o.is_number_unsigned()) bad("has data_offsets that are not non-negative integers");
  const uint64_t begin = value["data_offsets"][0].get<uint64_t>();
  const uint64_t end = value["data_offsets"][1].get<uint64_t>();
  if (begin > end) bad("has data_offsets with begin after end");
  if (end > static_cast<uint64_t>(data_bytes))
    bad(cat("lies outside the file (data ends at byte ", end, " of ", data_bytes, ")"));
  e.begin = static_cast<int64_t>(begin);
  e.end = static_cast<int64_t>(end);
  if (e.end - e.begin != count * itemsize)
    bad(cat("has ", e.end - e.begin, " data bytes but its shape ", to_string(e.shape), " of ",
            e.dtype, " needs ", count * itemsize));
  return e;
}

template <typename Source, typename Convert>
Tensor convert_tensor(const Shape& shape, const uint8_t* src, Convert convert) {
  Tensor t = Tensor::empty(shape);
  float* dst = t.data();
  for (int64_t i = 0; i < t.numel(); ++i) {
    Source v;
    std::memcpy(&v, src + i * int64_t{sizeof(Source)}, sizeof v);
    dst[i] = convert(v);
  }
  return t;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.file_ = MappedFile::open(path);
  const int64_t size = f.file_->size();
  if (size < 8) fail("'", path, "' is too short to be a safetensors file (", size, " bytes)");

  uint64_t header_len = 0;
  std::memcpy(&header_len, f.file_->data(), 8);
  if (header_len > static_cast<uint64_t>(kMaxHeaderBytes))
    fail("'", path, "': safetensors header length ", header_len, " exceeds the 100 MB limit");
  if (header_len > static_cast<uint64_t>(size - 8))
    fail("'", path, "': safetensors header length ", header_len, " exceeds the file size (", size,
         " bytes); the file is truncated or not safetensors");
  f.data_start_ = 8 + static_cast<int64_t>(header_len);
  const char* text = reinterpret_cast<const char*>(f.file_->data() + 8);
  const json header = parse_header(path, text, text + header_len);

  const int64_t data_bytes = size - f.data_start_;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      f.metadata_ = parse_metadata(path, value);
      continue;
    }
    f.entries_.push_back(parse_entry(path, name, value, data_bytes));
  }
  std::sort(f.entries_.begin(), f.entries_.end(),
            [](const auto& a, const auto& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < f.entries_.size(); ++i) {
    const auto& prev = f.entries_[i - 1];
    if (f.entries_[i].begin < prev.end && f.entries_[i].begin != f.entries_[i].end &&
        prev.begin != prev.end)
      fail("'", path, "': tensors '", prev.name, "' and '", f.entries_[i].name,
           "' overlap in the data section");
  }
  for (size_t i = 0; i < f.entries_.size(); ++i) f.index_[f.entries_[i].name] = i;
  return f;
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.name);
  return out;
}

Tensor SafetensorsFile::load(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (e == nullptr) fail("'", path_, "' has no tensor '", name, "'");
  if (e->shape.size() > static_cast<size_t>(Tensor::kMaxRank))
    fail("'", path_, "': tensor '", name, "' has rank ", e->shape.size(), "; vvae handles up to ",
         Tensor::kMaxRank);
  uint8_t* src = file_->data() + data_start_ + e->begin;
  if (e->dtype == "F32") {
    if (reinterpret_cast<uintptr_t>(src) % alignof(float) == 0)
      return Tensor::borrow(e->shape, reinterpret_cast<float*>(src), file_);
    return convert_tensor<float>(e->shape, src, [](float v) { return v; });
  }
  if (e->dtype == "F16") return convert_tensor<uint16_t>(e->shape, src, half_to_float);
  if (e->dtype == "BF16") return convert_tensor<uint16_t>(e->shape, src, bf16_to_float);
  if (e->dtype == "F64")
    return convert_tensor<double>(e->shape, src, [](double v) { return static_cast<float>(v); });
  fail("'", path_, "': tensor '", name, "' has dtype ", e->dtype,
       "; vvae reads F32, F16, BF16 and F64 tensors");
}

void SafetensorsFile::release_pages(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (e == nullptr) fail("'", path_, "' has no tensor '", name, "'");
  release_file_pages(file_->data() + data_start_ + e->begin, e->end - e->begin);
}

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const Metadata& metadata) {
  json header = json::object();
  // Metadata is text (JSON strings): a value that is not UTF-8 (a file name is bytes) is stored
  // escaped, as utf8_or_escaped() does.
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [key, value] : metadata) meta[utf8_or_escaped(key)] = utf8_or_escaped(value);
    header["__metadata__"] = meta;
  }
  int64_t offset = 0;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name == "__metadata__" || !seen.insert(name).second)
      fail("cannot write '", path, "': invalid or duplicate tensor name '", name, "'");
    if (!tensor.has_data()) fail("cannot write '", path, "': tensor '", name, "' has no data");
    header[name] = {{"dtype", "F32"},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + tensor.bytes()}}};
    offset += tensor.bytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  const uint64_t header_len = text.size();

  AtomicFile out(path);
  out.write(&header_len, sizeof header_len);
  out.write(text.data(), text.size());
  for (const auto& [name, tensor] : tensors)
    out.write(tensor.data(), static_cast<size_t>(tensor.bytes()));
  out.commit();
}

Tensor read_named_tensor(const SafetensorsFile& file, const std::string& name,
                         const std::string& preferred) {
  if (!name.empty()) {
    if (!file.contains(name)) fail("'", file.path(), "' has no tensor '", name, "'");
    return file.load(name);
  }
  if (file.contains(preferred)) return file.load(preferred);
  const auto names = file.names();
  if (names.size() == 1) return file.load(names[0]);
  if (names.empty()) fail("'", file.path(), "' holds no tensors");
  std::string list;
  for (size_t i = 0; i < names.size() && i < 6; ++i) {
    if (i) list += ", ";
    list += names[i];
  }
  if (names.size() > 6) list += ", ...";
  fail("'", file.path(), "' holds ", names.size(), " tensors (", list, ") and none is named '",
       preferred, "': pick one with --tensor NAME");
}

bool is_tensor_file(const std::string& path) {
  if (std::filesystem::path(path).extension() == ".safetensors") return true;
  std::ifstream in(path, std::ios::binary);
  unsigned char head[9] = {};
  if (!in.read(reinterpret_cast<char*>(head), 9)) return false;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | head[i];
  return head[8] == '{' && n >= 2 && n < (uint64_t{1} << 30);
}

}  // namespace vvae
