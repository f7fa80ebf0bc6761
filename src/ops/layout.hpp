#pragma once
// Moves between the API's channels-first tensors (B, C, spatial...) and the engine's
// channels-last activations (B, spatial..., C).

#include <cstdint>

#include "vvae/tensor.hpp"

namespace vvae {

Tensor to_channels_last(const Tensor& x);   // (B, C, S...) -> (B, S..., C)
Tensor to_channels_first(const Tensor& x);  // (B, S..., C) -> (B, C, S...)

// A box of frames and pixels [t0, t1) x [h0, h1) x [w0, w1) of one clip.
struct Box {
  int64_t t0 = 0, t1 = 0, h0 = 0, h1 = 0, w0 = 0, w1 = 0;
  int64_t frames() const { return t1 - t0; }
  int64_t height() const { return h1 - h0; }
  int64_t width() const { return w1 - w0; }
  static Box whole(const Shape& bcthw) { return {0, bcthw[2], 0, bcthw[3], 0, bcthw[4]}; }
};

// Sample b of a (B, C, T, H, W) tensor, cut to `box`, as a channels-last (1, t, h, w, C) tensor.
Tensor crop_to_channels_last(const Tensor& x, int64_t b, const Box& box);
// Writes a channels-last (1, t, h, w, C) tensor into sample b of a (B, C, T, H, W) tensor at
// (t0, h0, w0).
void paste_channels_first(const Tensor& src, Tensor& dst, int64_t b, int64_t t0, int64_t h0,
                          int64_t w0);

}  // namespace vvae
