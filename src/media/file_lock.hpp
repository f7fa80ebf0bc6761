#pragma once
// An exclusive advisory lock (flock) on a lock file, held while the object lives: two runs that
// would write the same outputs take the same lock, and the second is told instead of both
// writing. The lock file is created when needed and removed on release; a process that dies
// releases its locks with it.

#include <optional>
#include <string>

namespace vvae {

class FileLock {
 public:
  // Takes the lock of `path`, or returns nullopt when another process holds it. Throws Error
  // when the lock file cannot be created.
  static std::optional<FileLock> try_lock(const std::string& path);
  // Takes the lock of `path`, waiting while another process holds it (for short critical
  // sections such as rewriting an index). Throws Error when the lock file cannot be created.
  static FileLock lock(const std::string& path);
  // Removes the lock file at `path` that a holder killed before releasing it left behind, unless
  // a process holds it now. Does nothing when there is no such file or it cannot be opened (it
  // then guards nothing this process could take).
  static void remove_abandoned(const std::string& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  FileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  static std::optional<FileLock> acquire(const std::string& path, bool wait);
  void release();

  std::string path_;
  int fd_ = -1;
};

}  // namespace vvae
