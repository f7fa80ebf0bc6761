#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "vvae/error.hpp"

namespace vvae {

namespace fs = std::filesystem;

namespace {

constexpr size_t kRandomChars = 6;  // mkstemp's XXXXXX

bool is_random_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

mode_t creation_mode(mode_t bits) {
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return bits & ~mask;
}

// mkstemp/mkdtemp on `prefix` + "XXXXXX"; the file is made empty with the mode a plain open()
// (or mkdir()) would give it.
std::string make_temp(const std::string& prefix, const std::string& what, bool directory) {
  std::string pattern = prefix + std::string(kRandomChars, 'X');
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (directory) {
    if (::mkdtemp(buffer.data()) == nullptr)
      fail("cannot write '", what, "': ", std::strerror(errno));
    ::chmod(buffer.data(), creation_mode(0777));
  } else {
    const int fd = ::mkstemp(buffer.data());
    if (fd < 0) fail("cannot write '", what, "': ", std::strerror(errno));
    ::fchmod(fd, creation_mode(0666));
    ::close(fd);
  }
  return buffer.data();
}

void sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// rename() that fails with EEXIST instead of replacing `to`. Returns 0 or -1 with errno set.
int rename_no_replace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  // A filesystem without RENAME_NOREPLACE: link() refuses an existing name too.
  if (::link(from.c_str(), to.c_str()) == 0) {
    ::unlink(from.c_str());
    return 0;
  }
  if (errno != EPERM && errno != ENOTSUP) return -1;
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) {
    errno = EEXIST;
    return -1;
  }
  return std::rename(from.c_str(), to.c_str());
}

// A test hook, off unless VVAE_TEST_STALL_COMMIT is set: "PATTERN" or "PATTERN@N" stops the
// (N+1)-th commit (the first by default) of a file whose name matches the fnmatch PATTERN just
// before its rename (the temporary complete, the destination untouched), says so on stderr and
// sleeps, so the fault tests can kill -9 a run at exactly that moment rather than by timing.
void test_stall_before_rename(const std::string& path) {
  static const char* setting = std::getenv("VVAE_TEST_STALL_COMMIT");
  if (setting == nullptr || *setting == '\0') return;
  static std::atomic<long> matches{0};
  std::string pattern = setting;
  long skip = 0;
  if (const size_t at = pattern.rfind('@'); at != std::string::npos) {
    skip = std::atol(pattern.c_str() + at + 1);
    pattern.resize(at);
  }
  const std::string name = fs::path(path).filename().string();
  if (::fnmatch(pattern.c_str(), name.c_str(), 0) != 0 || matches++ != skip) return;
  std::fprintf(stderr, "vvae: test: stalled before committing %s\n", path.c_str());
  std::fflush(stderr);
  ::sleep(600);
}

}  // namespace

std::string temporary_prefix(const std::string& path) {
  return path + ".tmp-" + std::to_string(::getpid()) + "-";
}

bool is_temporary_of(const std::string& file_name, const std::string& name, int64_t* pid) {
  const std::string head = name + ".tmp-";
  if (file_name.size() <= head.size() || file_name.compare(0, head.size(), head) != 0) return false;
  const std::string rest = file_name.substr(head.size());
  const size_t dash = rest.find('-');
  if (dash == 0 || dash == std::string::npos || dash > 10) return false;
  if (!std::all_of(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(dash),
                   [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const std::string random = rest.substr(dash + 1);
  if (random.size() != kRandomChars || !std::all_of(random.begin(), random.end(), is_random_char))
    return false;
  if (pid != nullptr) *pid = std::stoll(rest.substr(0, dash));
  return true;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) fail("cannot write: empty output path");
  if (fs::is_directory(path_)) fail("cannot write '", path_, "': it is a directory");
  std::string pattern = temporary_prefix(path_) + std::string(kRandomChars, 'X');
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  fd_ = ::mkstemp(buffer.data());
  if (fd_ < 0) fail("cannot write '", path_, "': ", std::strerror(errno));
  temp_path_ = buffer.data();
  // mkstemp creates the file 0600; give it the mode a plain open() would have.
  ::fchmod(fd_, creation_mode(0666));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::fail_io(const char* what) {
  const int err = errno;
  fail("cannot write '", path_, "' (", what, "): ", std::strerror(err));
}

void AtomicFile::write(const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_io("write");
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0 && errno != EINVAL) fail_io("fsync");
  if (::close(fd_) != 0) {
    fd_ = -1;
    fail_io("close");
  }
  fd_ = -1;
  test_stall_before_rename(path_);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) fail_io("rename");
  committed_ = true;
}

AtomicPath::AtomicPath(std::string path) : path_(std::move(path)) {
  if (path_.empty()) fail("cannot write: empty output path");
  if (fs::is_directory(path_)) fail("cannot write '", path_, "': it is a directory");
  temp_path_ = make_temp(temporary_prefix(path_), path_, false);
}

AtomicPath::~AtomicPath() {
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicPath::commit() {
  sync_path(temp_path_);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0)
    fail("cannot write '", path_, "' (rename): ", std::strerror(errno));
  committed_ = true;
}

AtomicDirectory::AtomicDirectory(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  if (dir_.empty()) fail("cannot write: empty output folder");
  struct stat st {};
  if (::lstat(dir_.c_str(), &st) == 0) {
    struct stat target {};
    if (::stat(dir_.c_str(), &target) != 0)
      fail("cannot write folder '", dir_, "': it is a symbolic link to nothing");
    if (!S_ISDIR(target.st_mode)) fail("cannot write folder '", dir_, "': it is a file");
    existing_ = true;
    staging_ = make_temp(
        (fs::path(dir_) / ".vvae-tmp-").string() + std::to_string(::getpid()) + "-", dir_, true);
  } else {
    staging_ = make_temp(temporary_prefix(dir_), dir_, true);
  }
}

std::string AtomicDirectory::file(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    fail("internal: AtomicDirectory file name '", name, "'");
  if (std::find(names_.begin(), names_.end(), name) == names_.end()) names_.push_back(name);
  return (fs::path(staging_) / name).string();
}

void AtomicDirectory::remove_written() {
  for (const std::string& name : moved_) ::unlink((fs::path(dir_) / name).c_str());
  for (const std::string& name : names_) ::unlink((fs::path(staging_) / name).c_str());
  ::rmdir(staging_.c_str());
}

AtomicDirectory::~AtomicDirectory() {
  if (!committed_ && !staging_.empty()) remove_written();
}

void AtomicDirectory::commit(const std::vector<std::string>& replaceable,
                             const std::vector<std::string>& stale) {
  auto listed = [](const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  for (const std::string& name : names_) sync_path((fs::path(staging_) / name).string());
  if (!existing_) {
    // The whole folder appears at once; a folder that appeared meanwhile is left alone.
    if (rename_no_replace(staging_, dir_) != 0) {
      const int err = errno;
      if (err == EEXIST || err == ENOTEMPTY)
        fail("cannot write folder '", dir_, "': it appeared while vvae was writing it");
      fail("cannot write folder '", dir_, "' (rename): ", std::strerror(err));
    }
    sync_path(fs::path(dir_).parent_path().empty() ? "." : fs::path(dir_).parent_path().string());
    committed_ = true;
    return;
  }
  for (const std::string& name : names_) {
    const std::string from = (fs::path(staging_) / name).string();
    const std::string to = (fs::path(dir_) / name).string();
    const bool may_replace = listed(replaceable, name);
    if ((may_replace ? std::rename(from.c_str(), to.c_str()) : rename_no_replace(from, to)) != 0) {
      const int err = errno;
      if (err == EEXIST)
        fail("cannot write '", to, "': a file of that name appeared while vvae was writing");
      fail("cannot write '", to, "' (rename): ", std::strerror(err));
    }
    moved_.push_back(name);
  }
  for (const std::string& name : stale)
    if (!listed(names_, name)) ::unlink((fs::path(dir_) / name).c_str());
  ::rmdir(staging_.c_str());
  sync_path(dir_);
  committed_ = true;
}

}  // namespace vvae
