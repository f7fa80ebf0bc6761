#include "io/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/file_pages.hpp"
#include "vvae/error.hpp"

namespace vvae {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("'", path, "' is not a regular file");
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = st.st_size;
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, static_cast<size_t>(file->size_), PROT_READ | PROT_WRITE, MAP_PRIVATE,
                     fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      fail("cannot map '", path, "': ", std::strerror(err));
    }
    file->data_ = static_cast<uint8_t*>(p);
    register_file_mapping(p, file->size_);
  }
  ::close(fd);
  return file;
}

MappedFile::~MappedFile() {
  if (data_ == nullptr) return;
  unregister_file_mapping(data_);
  ::munmap(data_, static_cast<size_t>(size_));
}

}  // namespace vvae
