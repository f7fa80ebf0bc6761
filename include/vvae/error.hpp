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
  explicit Error(const std::string& message) : std::runtime_error(one_line(message)) {}

  // The message with its control characters written as escapes (\n, \t, \xNN): a name read
  // from a user's file may hold any byte, and the message stays one line (found by fuzzing a
  // config key holding "\n").
  static std::string one_line(const std::string& message) {
    std::string out;
    out.reserve(message.size());
    for (const char c : message) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte >= 0x20 && byte != 0x7f) {
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\t') {
        out += "\\t";
      } else {
        const char* hex = "0123456789abcdef";
        out += "\\x";
        out += hex[byte >> 4];
        out += hex[byte & 15];
      }
    }
    return out;
  }
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
