#pragma once
// What every libFuzzer harness shares: the input as a file (vvae's readers take paths), and the
// rule that decides what a finding is. A harness may end in vvae::Error (one clear message: the
// input was refused) or in success; anything else (another exception, a crash, a sanitizer
// report, a hang, runaway memory) is a finding that libFuzzer reports and keeps.

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "vvae/error.hpp"

namespace vvae::fuzz {

// The input bytes in an anonymous in-memory file, named by a /proc/self/fd path that every reader
// (std::ifstream, mmap, FFmpeg's file protocol) opens like any other. No name extension: the
// readers must judge files by their content.
class InputFile {
 public:
  InputFile(const uint8_t* data, size_t size) : fd_(memfd_create("vvae-fuzz", 0)) {
    if (fd_ < 0) std::abort();
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// Runs `body`; vvae::Error is the one acceptable failure, and its message must be one line.
template <typename Body>
void refuse_or_pass(Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.empty() || message.find('\n') != std::string::npos) std::abort();
  }
}

}  // namespace vvae::fuzz
