#pragma once
// Test videos made with FFmpeg's libraries: any encoder, pixel format and container, from
// synthetic frames whose content the tests know.

#include <cstdint>
#include <string>

#include "vvae/video.hpp"

namespace vvae::test {

struct MakeVideo {
  std::string codec = "ffv1";  // encoder name: ffv1 (lossless), libx264, libvpx-vp9, mjpeg, gif...
  std::string pix_fmt;         // default: one the encoder takes (lossless RGB for ffv1)
  std::string format;          // muxer; default from the extension
  double fps = 24;
  bool alpha = false;  // encode RGBA (frames' alpha = alpha_value)
  uint8_t alpha_value = 128;
  bool still = false;  // a single image file: the encoder's packet written as the file
};

void make_video(const std::string& path, const RgbFrames& frames, const MakeVideo& options);

// Frame t, pixel (y, x): R = 4 t + 1, G = 2 y, B = 2 x (mod 256): every frame, row and column
// can be told from its values.
RgbFrames index_frames(int64_t t, int64_t h, int64_t w);
// A smooth moving pattern (a bright disc over a drifting gradient) that lossy codecs keep well.
RgbFrames moving_frames(int64_t t, int64_t h, int64_t w);

}  // namespace vvae::test
