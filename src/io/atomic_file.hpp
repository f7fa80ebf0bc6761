#pragma once
// Writes a file under a temporary name beside its destination and renames it into place on
// commit(), so a reader never sees a half-written output. Without commit() (an error, an
// exception) the temporary file is removed.

#include <cstddef>
#include <string>

namespace vvae {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void commit();
  const std::string& temp_path() const { return temp_path_; }

 private:
  [[noreturn]] void fail_io(const char* what);

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace vvae
