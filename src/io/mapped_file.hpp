#pragma once
// A read-only view of a whole file through mmap. Pages are mapped private and writable
// (copy-on-write), so a tensor borrowed from the mapping can never fault on a stray write.

#include <cstdint>
#include <memory>
#include <string>

namespace vvae {

class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  uint8_t* data() const { return data_; }
  int64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  uint8_t* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace vvae
