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

// A temporary path beside `path` for writers that open the file themselves (libavformat): the
// file is created empty under `path.tmp-XXXXXX`, moved to `path` by commit() (after an fsync),
// and removed otherwise.
class AtomicPath {
 public:
  explicit AtomicPath(std::string path);
  ~AtomicPath();
  AtomicPath(const AtomicPath&) = delete;
  AtomicPath& operator=(const AtomicPath&) = delete;

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  void commit();

 private:
  std::string path_;
  std::string temp_path_;
  bool committed_ = false;
};

// A temporary folder beside `dir`, moved to `dir` by commit() (replacing a folder already there)
// and removed with its contents otherwise.
class AtomicDirectory {
 public:
  explicit AtomicDirectory(std::string dir);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  const std::string& temp_path() const { return temp_path_; }
  void commit();

 private:
  std::string dir_;
  std::string temp_path_;
  bool committed_ = false;
};

}  // namespace vvae
