#include "media/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "vvae/error.hpp"

namespace vvae {

std::optional<FileLock> FileLock::try_lock(const std::string& path) {
  return acquire(path, false);
}

FileLock FileLock::lock(const std::string& path) {
  return *acquire(path, true);
}

void FileLock::remove_abandoned(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  try {
    try_lock(path);  // taken only when no process holds it; releasing it unlinks the file
  } catch (const Error&) {
  }
}

std::optional<FileLock> FileLock::acquire(const std::string& path, bool wait) {
  // A holder removes the file as it releases the lock: a lock taken on a file that is no
  // longer the one at `path` guards nothing, so open the new one and try again (a waiter may
  // lose that race to others any number of times, so it keeps trying).
  for (int attempt = 0; wait || attempt < 16; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd < 0) fail("cannot create the lock file '", path, "': ", std::strerror(errno));
    int rc;
    do {
      rc = ::flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK && !wait) return std::nullopt;
      fail("cannot lock '", path, "': ", std::strerror(err));
    }
    struct stat held {
    }, named{};
    if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 &&
        held.st_dev == named.st_dev && held.st_ino == named.st_ino)
      return FileLock(path, fd);
    ::close(fd);
  }
  fail("cannot lock '", path, "': it keeps being replaced");
}

FileLock::FileLock(FileLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileLock::~FileLock() {
  release();
}

void FileLock::release() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // while still held: a waiter then finds a new file (see try_lock)
  ::close(fd_);
  fd_ = -1;
}

}  // namespace vvae
