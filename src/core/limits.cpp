#include "vvae/limits.hpp"

#include "vvae/error.hpp"

namespace vvae::limits {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace

int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  if (a < 0 || b < 0) fail(what, ": negative size (", a, " x ", b, ")");
  int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out))
    fail(what, ": ", a, " x ", b, " overflows 64-bit arithmetic");
  return out;
}

int64_t checked_add(int64_t a, int64_t b, const std::string& what) {
  if (a < 0 || b < 0) fail(what, ": negative size (", a, " + ", b, ")");
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out))
    fail(what, ": ", a, " + ", b, " overflows 64-bit arithmetic");
  return out;
}

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& what,
                      int64_t max_elements) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0) fail(what, " ", shape_text(shape), " has a negative dimension");
  for (int64_t d : shape) {
    if (d != 0 && n > max_elements / d)
      fail(what, " ", shape_text(shape), " has more than ", max_elements,
           " elements (vvae's limit: ", max_elements >> 28, " GiB of float32)");
    n *= d;
  }
  return n;
}

void check_clip_limits(const std::vector<int64_t>& shape, const std::string& what) {
  if (shape.size() != 5) return;  // the shape rules say what a clip is
  static const char* const names[] = {"batch size", "channels", "frames", "height", "width"};
  static const int64_t caps[] = {kMaxBatch, kMaxChannels, kMaxFrames, kMaxSide, kMaxSide};
  for (size_t i = 0; i < 5; ++i)
    if (shape[i] > caps[i])
      fail(what, " ", shape_text(shape), " has ", names[i], " ", shape[i], "; vvae's limit is ",
           caps[i]);
  checked_numel(shape, what, kMaxClipElements);
}

void check_json_depth(const char* begin, const char* end, const std::string& what) {
  int64_t depth = 0;
  bool in_string = false;
  for (const char* p = begin; p < end; ++p) {
    const char c = *p;
    if (in_string) {
      if (c == '\\')
        ++p;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        fail(what, " nests JSON deeper than ", kMaxJsonDepth, " levels (vvae's limit)");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

void check_range(int64_t value, int64_t lo, int64_t hi, const std::string& what) {
  if (value < lo || value > hi)
    fail(what, " is ", value, "; it must be in [", lo, ", ", hi, "] (vvae's limit)");
}

}  // namespace vvae::limits
