#pragma once
// Writes a file under a temporary name beside its destination and renames it into place on
// commit(), so a reader never sees a half-written output. Without commit() (an error, an
// exception) the temporary file is removed.
//
// Temporary names are `NAME.tmp-PID-XXXXXX` (this process's id and six random characters), so
// concurrent runs never pick, or clean up, each other's temporaries.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vvae {

// "NAME.tmp-PID-": the start of every temporary this process makes for `path`.
std::string temporary_prefix(const std::string& path);
// Whether `file_name` is a temporary some vvae process made for a file named `name`
// (`name.tmp-PID-XXXXXX`); sets `pid` to that process's id.
bool is_temporary_of(const std::string& file_name, const std::string& name, int64_t* pid = nullptr);

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
// file is created empty under `path.tmp-PID-XXXXXX`, moved to `path` by commit() (after an
// fsync), and removed otherwise.
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

// Files that appear together in the folder `dir` on commit(), replacing nothing they may not.
// A folder that does not exist is built beside it (`dir.tmp-PID-XXXXXX`) and renamed to `dir`
// whole. An existing folder (or a symlink to one: it is followed) gets a staging folder inside
// (`dir/.vvae-tmp-PID-XXXXXX`) whose files commit() moves into it: a file already there is
// replaced only when its name is in `replaceable`, and the names in `stale` that the new files
// did not replace are removed after. Without commit() (an error, an exception) every file this
// object wrote is removed and `dir` is left as it was (a folder it created goes too).
class AtomicDirectory {
 public:
  explicit AtomicDirectory(std::string dir);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  // The temporary path to write the file `name` (a plain file name) at.
  std::string file(const std::string& name);
  // The staging folder the files are written in.
  const std::string& temp_path() const { return staging_; }
  void commit(const std::vector<std::string>& replaceable = {},
              const std::vector<std::string>& stale = {});

 private:
  void remove_written();

  std::string dir_;
  std::string staging_;
  bool existing_ = false;           // `dir` existed: files move into it one by one
  std::vector<std::string> names_;  // files written in the staging folder, in order
  std::vector<std::string> moved_;  // files commit() moved into `dir` so far
  bool committed_ = false;
};

}  // namespace vvae
