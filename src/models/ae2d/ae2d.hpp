#pragma once
// The Flux-style 2D AutoEncoder of Open-Sora (opensora/models/vae/autoencoder_2d.py), applied
// frame by frame to (B, C, T, H, W) clips.

#include <vector>

#include "models/family.hpp"

namespace vvae {

Family ae2d_family();  // with the preset flux-ae

}  // namespace vvae
