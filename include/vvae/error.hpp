#pragma once
// vvae reports every failure as vvae::Error: one line that says what went wrong and, where it
// helps, what to do about it. The CLI prints it and exits non-zero.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace vvae {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates any streamable values into one string: cat("got ", n, " frames").
template <typename... Parts>
std::string cat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw Error(cat(std::forward<Parts>(parts)...));
}

}  // namespace vvae
