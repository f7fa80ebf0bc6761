#pragma once
// Pictures for `vvae reconstruct --compare`: a side-by-side clip (original | reconstruction |
// error heat map) and a plot of PSNR per frame, drawn into RGB buffers by hand (a 5x7 pixel
// font for the labels), so no plotting library is needed.

#include <string>
#include <vector>

#include "vvae/video.hpp"

namespace vvae {

// The error heat map's full scale: a mean absolute error over R, G, B of this many 8-bit levels
// (or more) is drawn at the top of the colour ramp.
constexpr double kHeatFullScale = 64.0;

// (T, H, 3W): original | reconstruction | heat map of mean |original - reconstruction| over
// the channels (black 0 -> purple -> red -> orange -> pale yellow >= kHeatFullScale), labelled
// when the frames are at least 48 pixels wide.
RgbFrames side_by_side(const RgbFrames& original, const RgbFrames& reconstruction);

// A 640x360 line plot of `psnr` (dB) against the frame index, with axes, grid, tick labels and
// a title line carrying the mean and the minimum.
RgbFrames psnr_plot(const std::vector<double>& psnr);

// Draws `text` (digits, A-Z, space and . - ( ) : / %) at (x, y) in a 5x7 font scaled by `scale`.
void draw_text(RgbFrames& image, int64_t x, int64_t y, const std::string& text, int64_t scale,
               const uint8_t color[3]);

}  // namespace vvae
