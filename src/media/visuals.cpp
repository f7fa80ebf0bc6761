#include "media/visuals.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "vvae/error.hpp"

namespace vvae {

namespace {

struct Glyph {
  char c;
  const char* rows[7];
};

// clang-format off
const Glyph kFont[] = {
  {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
  {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
  {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
  {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
  {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
  {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
  {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
  {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
  {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
  {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
  {'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
  {'B', {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}},
  {'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
  {'D', {"####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."}},
  {'E', {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}},
  {'F', {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}},
  {'G', {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}},
  {'H', {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
  {'I', {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
  {'K', {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}},
  {'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
  {'M', {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}},
  {'N', {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}},
  {'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
  {'P', {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}},
  {'R', {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}},
  {'S', {".####", "#....", "#....", ".###.", "....#", "....#", "####."}},
  {'T', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
  {'U', {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
  {'V', {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
  {'W', {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "##.##", "#...#"}},
  {'X', {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}},
  {'Y', {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}},
  {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
  {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
  {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
  {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
  {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
  {'/', {"....#", "...#.", "...#.", "..#..", ".#...", ".#...", "#...."}},
  {'%', {"##..#", "##..#", "...#.", "..#..", ".#...", "#..##", "#..##"}},
};
// clang-format on

const Glyph* find_glyph(char c) {
  c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& g : kFont)
    if (g.c == c) return &g;
  return nullptr;
}

void put(RgbFrames& img, int64_t x, int64_t y, const uint8_t c[3]) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  std::memcpy(img.frame(0) + (y * img.width + x) * 3, c, 3);
}

void fill(RgbFrames& img, int64_t x0, int64_t y0, int64_t x1, int64_t y1, const uint8_t c[3]) {
  for (int64_t y = std::max<int64_t>(0, y0); y < std::min(img.height, y1); ++y)
    for (int64_t x = std::max<int64_t>(0, x0); x < std::min(img.width, x1); ++x) put(img, x, y, c);
}

void line(RgbFrames& img, double x0, double y0, double x1, double y1, int64_t thick,
          const uint8_t c[3]) {
  const double steps = std::max({std::abs(x1 - x0), std::abs(y1 - y0), 1.0});
  for (int64_t i = 0; i <= static_cast<int64_t>(steps); ++i) {
    const double t = static_cast<double>(i) / steps;
    const int64_t x = std::lround(x0 + (x1 - x0) * t), y = std::lround(y0 + (y1 - y0) * t);
    fill(img, x - thick / 2, y - thick / 2, x - thick / 2 + thick, y - thick / 2 + thick, c);
  }
}

std::string number(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// A "nice" tick step (1, 2, 5 x 10^k) giving at most `max_ticks` ticks over `range`.
double nice_step(double range, int max_ticks) {
  const double raw = range / std::max(1, max_ticks);
  const double mag = std::pow(10.0, std::floor(std::log10(std::max(raw, 1e-9))));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

void heat_color(double v, uint8_t out[3]) {
  static const double stops[5][3] = {
      {0, 0, 4}, {87, 16, 110}, {188, 55, 84}, {249, 142, 9}, {252, 255, 164}};
  v = std::min(std::max(v, 0.0), 1.0) * 4.0;
  const int i = std::min(3, static_cast<int>(v));
  const double f = v - i;
  for (int c = 0; c < 3; ++c)
    out[c] = static_cast<uint8_t>(std::lround(stops[i][c] * (1 - f) + stops[i + 1][c] * f));
}

}  // namespace

void draw_text(RgbFrames& image, int64_t x, int64_t y, const std::string& text, int64_t scale,
               const uint8_t color[3]) {
  for (char ch : text) {
    if (const Glyph* g = find_glyph(ch))
      for (int64_t r = 0; r < 7; ++r)
        for (int64_t col = 0; col < 5; ++col)
          if (g->rows[r][col] == '#')
            fill(image, x + col * scale, y + r * scale, x + (col + 1) * scale, y + (r + 1) * scale,
                 color);
    x += 6 * scale;
  }
}

RgbFrames side_by_side(const RgbFrames& a, const RgbFrames& b) {
  if (a.frames != b.frames || a.height != b.height || a.width != b.width)
    fail("side_by_side: the clips differ in shape");
  const int64_t H = a.height, W = a.width;
  RgbFrames out(a.frames, H, 3 * W);
  const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0};
  for (int64_t t = 0; t < a.frames; ++t) {
    RgbFrames view(1, H, 3 * W);
    for (int64_t y = 0; y < H; ++y) {
      uint8_t* o = view.frame(0) + y * 3 * W * 3;
      const uint8_t* pa = a.frame(t) + y * W * 3;
      const uint8_t* pb = b.frame(t) + y * W * 3;
      std::memcpy(o, pa, static_cast<size_t>(W * 3));
      std::memcpy(o + W * 3, pb, static_cast<size_t>(W * 3));
      for (int64_t x = 0; x < W; ++x) {
        double e = 0;
        for (int c = 0; c < 3; ++c)
          e += std::abs(static_cast<double>(pa[x * 3 + c]) - static_cast<double>(pb[x * 3 + c]));
        heat_color(e / 3.0 / kHeatFullScale, o + (2 * W + x) * 3);
      }
    }
    if (W >= 48) {
      const int64_t s = W >= 256 ? 2 : 1;
      const char* labels[3] = {"ORIG", "RECN", "ERROR"};
      for (int64_t p = 0; p < 3; ++p) {
        draw_text(view, p * W + 3 + s, 3 + s, labels[p], s, black);
        draw_text(view, p * W + 3, 3, labels[p], s, white);
      }
    }
    std::memcpy(out.frame(t), view.frame(0), static_cast<size_t>(view.frame_bytes()));
  }
  return out;
}

RgbFrames psnr_plot(const std::vector<double>& psnr) {
  const int64_t W = 640, H = 360, left = 64, right = 16, top = 40, bottom = 44;
  RgbFrames img(1, H, W);
  std::memset(img.data.data(), 255, img.data.size());
  const uint8_t axis[3] = {40, 40, 40}, grid[3] = {225, 225, 225}, ink[3] = {20, 20, 20},
                plot[3] = {31, 90, 180};
  const int64_t n = static_cast<int64_t>(psnr.size());
  double lo = n ? *std::min_element(psnr.begin(), psnr.end()) : 0;
  double hi = n ? *std::max_element(psnr.begin(), psnr.end()) : 1;
  double mean = 0;
  for (double v : psnr) mean += v / static_cast<double>(std::max<int64_t>(1, n));
  const double ystep = nice_step(std::max(hi - lo, 1.0), 6);
  lo = std::floor(lo / ystep) * ystep;
  hi = std::ceil(hi / ystep) * ystep;
  if (hi <= lo) hi = lo + ystep;
  const double x_max = static_cast<double>(std::max<int64_t>(1, n - 1));
  const double pw = static_cast<double>(W - left - right),
               ph = static_cast<double>(H - top - bottom);
  auto px = [&](double f) {
    return n <= 1 ? static_cast<double>(left) + pw / 2 : static_cast<double>(left) + f / x_max * pw;
  };
  auto py = [&](double v) { return static_cast<double>(top) + (hi - v) / (hi - lo) * ph; };

  for (double v = lo; v <= hi + 1e-9; v += ystep) {
    const int64_t y = std::lround(py(v));
    line(img, static_cast<double>(left), static_cast<double>(y), static_cast<double>(W - right),
         static_cast<double>(y), 1, grid);
    const std::string label = number(v, ystep < 1 ? 1 : 0);
    draw_text(img, left - 8 - static_cast<int64_t>(label.size()) * 12, y - 7, label, 2, ink);
  }
  const double xstep = nice_step(x_max, 8);
  for (double f = 0; f <= x_max + 1e-9 && n > 0; f += std::max(1.0, xstep)) {
    const int64_t x = std::lround(px(f));
    line(img, static_cast<double>(x), static_cast<double>(top), static_cast<double>(x),
         static_cast<double>(H - bottom), 1, grid);
    const std::string label = number(f, 0);
    draw_text(img, x - static_cast<int64_t>(label.size()) * 6, H - bottom + 8, label, 2, ink);
  }
  line(img, static_cast<double>(left), static_cast<double>(top), static_cast<double>(left),
       static_cast<double>(H - bottom), 2, axis);
  line(img, static_cast<double>(left), static_cast<double>(H - bottom),
       static_cast<double>(W - right), static_cast<double>(H - bottom), 2, axis);
  for (int64_t i = 0; i + 1 < n; ++i)
    line(img, px(static_cast<double>(i)), py(psnr[i]), px(static_cast<double>(i + 1)),
         py(psnr[i + 1]), 2, plot);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t x = std::lround(px(static_cast<double>(i))), y = std::lround(py(psnr[i]));
    fill(img, x - 2, y - 2, x + 3, y + 3, plot);
  }
  const std::string title = n ? "PSNR PER FRAME (DB)  MEAN " + number(mean, 2) + "  MIN " +
                                    number(*std::min_element(psnr.begin(), psnr.end()), 2)
                              : "PSNR PER FRAME (DB)";
  draw_text(img, left, 12, title, 2, ink);
  draw_text(img, left + static_cast<int64_t>(pw) / 2 - 30, H - 18, "FRAME", 2, ink);
  return img;
}

}  // namespace vvae
