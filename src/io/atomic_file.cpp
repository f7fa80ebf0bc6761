#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "vvae/error.hpp"

namespace vvae {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) fail("cannot write: empty output path");
  if (std::filesystem::is_directory(path_)) fail("cannot write '", path_, "': it is a directory");
  std::string pattern = path_ + ".tmp-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  fd_ = ::mkstemp(buffer.data());
  if (fd_ < 0) fail("cannot write '", path_, "': ", std::strerror(errno));
  temp_path_ = buffer.data();
  // mkstemp creates the file 0600; give it the mode a plain open() would have.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd_, 0666 & ~mask);
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
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) fail_io("rename");
  committed_ = true;
}

}  // namespace vvae

namespace vvae {

namespace {

std::string make_temp(const std::string& path, bool directory) {
  std::string pattern = path + ".tmp-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (directory) {
    if (::mkdtemp(buffer.data()) == nullptr)
      fail("cannot write '", path, "': ", std::strerror(errno));
  } else {
    const int fd = ::mkstemp(buffer.data());
    if (fd < 0) fail("cannot write '", path, "': ", std::strerror(errno));
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd, 0666 & ~mask);
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

}  // namespace

AtomicPath::AtomicPath(std::string path) : path_(std::move(path)) {
  if (path_.empty()) fail("cannot write: empty output path");
  if (std::filesystem::is_directory(path_)) fail("cannot write '", path_, "': it is a directory");
  temp_path_ = make_temp(path_, false);
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
  if (std::filesystem::exists(dir_) && !std::filesystem::is_directory(dir_))
    fail("cannot write folder '", dir_, "': a file of that name exists");
  temp_path_ = make_temp(dir_, true);
}

AtomicDirectory::~AtomicDirectory() {
  if (!committed_ && !temp_path_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_path_, ec);
  }
}

void AtomicDirectory::commit() {
  namespace fs = std::filesystem;
  std::string old;
  if (fs::exists(dir_)) {
    old = make_temp(dir_ + ".old", true);
    if (std::rename(dir_.c_str(), old.c_str()) != 0)
      fail("cannot replace folder '", dir_, "': ", std::strerror(errno));
  }
  if (std::rename(temp_path_.c_str(), dir_.c_str()) != 0) {
    const int err = errno;
    if (!old.empty()) std::rename(old.c_str(), dir_.c_str());
    fail("cannot write folder '", dir_, "' (rename): ", std::strerror(err));
  }
  committed_ = true;
  if (!old.empty()) {
    std::error_code ec;
    fs::remove_all(old, ec);
  }
}

}  // namespace vvae
