#pragma once
// HunyuanVideo's causal 3D VAE (AutoencoderKLCausal3D), as Open-Sora 2.0 ships it
// (opensora/models/hunyuan_vae/): 4x8x8 compression, clips of 1 + 4k frames, Open-Sora's
// spatial and temporal tiling.

#include <vector>

#include "models/family.hpp"

namespace vvae {

Family hunyuan_family();  // with the preset hunyuan-vae

}  // namespace vvae
