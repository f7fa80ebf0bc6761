#pragma once
// Where a run's time goes, per kind of operation and shape: benchmarks turn it on, print it and
// see the next thing to speed up. Off by default; an op then pays one atomic load.
//
//   { ProfileTimer timer("group_norm", x.shape()); ... }   // times the enclosing work
//   profile_record("winograd 3x3", shape, seconds, transform_seconds, flops);

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "vvae/tensor.hpp"

namespace vvae {

struct ProfileEntry {
  std::string op;     // "conv winograd 3x3x3", "conv direct 1x1", "group_norm", ...
  std::string shape;  // the input shape (and, for convolutions, the output channels)
  int64_t calls = 0;
  double seconds = 0;            // wall time
  double transform_seconds = 0;  // of which Winograd's transforms (thread average)
  int64_t executed_flops = 0;    // the products really run (2 per multiply-add)
};

void set_profiling(bool on);
bool profiling();
// Adds one call's figures to the entry for (op, shape).
void profile_record(const std::string& op, const std::string& shape, double seconds,
                    double transform_seconds = 0, int64_t executed_flops = 0);
// The entries since the last take, most time first; clears them.
std::vector<ProfileEntry> take_profile();

class ProfileTimer {
 public:
  ProfileTimer(const char* op, const Shape& shape);
  ~ProfileTimer();
  ProfileTimer(const ProfileTimer&) = delete;
  ProfileTimer& operator=(const ProfileTimer&) = delete;

 private:
  const char* op_;
  Shape shape_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace vvae
