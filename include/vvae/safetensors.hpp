#pragma once
// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then
// the raw data. The reader maps the file and validates the whole header before any tensor is
// touched; the writer writes to a temporary name and renames on success.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vvae/tensor.hpp"

namespace vvae {

class MappedFile;

using Metadata = std::map<std::string, std::string>;

struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16", "F64", "I64", ...
  Shape shape;
  int64_t begin = 0;  // byte offsets into the data section
  int64_t end = 0;
};

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // by offset
  const Metadata& metadata() const { return metadata_; }
  const SafetensorsEntry* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  std::vector<std::string> names() const;

  // The tensor as float32: F32 data is borrowed from the mapping without a copy, F16, BF16 and
  // F64 are converted. Other dtypes are an error.
  Tensor load(const std::string& name) const;
  // Hands the resident pages of the tensor's stored bytes back to the kernel (they are read
  // from the file again if touched): for a reader done with a tensor it converted.
  void release_pages(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  int64_t data_start_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  Metadata metadata_;
};

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// Writes float32 tensors and metadata; the file appears at `path` only once fully written.
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const Metadata& metadata = {});

// The tensor `name` if given, else `preferred` if present, else the file's only tensor; an
// Error naming the choices otherwise.
Tensor read_named_tensor(const SafetensorsFile& file, const std::string& name,
                         const std::string& preferred);

// True when `path` is a safetensors file (by extension, or by its first bytes).
bool is_tensor_file(const std::string& path);

}  // namespace vvae
