#pragma once
// The progress display of the commands that work through many clips (reconstruct, encode
// --manifest): a bar with clips/s and the ETA on a terminal (stderr), log lines otherwise
// (stdout).

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "cli_common.hpp"

namespace vvae::cli {

inline std::string fixed(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

class Progress {
 public:
  Progress(int64_t total, bool quiet) : total_(total), quiet_(quiet), tty_(::isatty(2) != 0) {
    draw();
  }

  // Prints a line above the bar (or as is without a terminal).
  void line(std::ostream& out, const std::string& text) {
    if (quiet_ && &out == &std::cout) return;
    clear();
    out << text << "\n";
    out.flush();
    draw();
  }

  bool on_terminal() const { return tty_ && !quiet_; }

  void step(bool computed, double clip_seconds, const std::string& last = "") {
    ++done_;
    if (!last.empty()) last_ = last;
    if (computed) {
      ++computed_;
      compute_seconds_ += clip_seconds;
    }
    draw();
  }

  void finish() {
    clear();
    drawn_ = false;
  }

 private:
  void clear() {
    if (tty_ && drawn_ && !quiet_) std::cerr << "\r\033[K";
  }

  void draw() {
    if (!tty_ || quiet_) return;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const int width = 28;
    const int filled = total_ ? static_cast<int>(width * done_ / total_) : width;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::string rate = "-", eta = "-";
    if (computed_ > 0 && elapsed > 0) {
      const double per_clip = compute_seconds_ / static_cast<double>(computed_);
      rate = fixed(static_cast<double>(computed_) / elapsed, 2);
      eta = format_seconds(per_clip * static_cast<double>(total_ - done_));
    }
    std::cerr << "\r[" << bar << "] " << done_ << "/" << total_ << " clips  " << rate
              << " clips/s  ETA " << eta << (last_.empty() ? "" : "  last: " + last_) << "\033[K";
    std::cerr.flush();
    drawn_ = true;
  }

  int64_t total_;
  std::string last_;
  bool quiet_;
  bool tty_;
  bool drawn_ = false;
  int64_t done_ = 0, computed_ = 0;
  double compute_seconds_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace vvae::cli
