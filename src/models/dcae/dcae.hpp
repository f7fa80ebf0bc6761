#pragma once
// Open-Sora's Video DC-AE (opensora/models/dc_ae/): deterministic video autoencoder with 4x
// temporal and 32x32 spatial compression (dc-ae-f32t4c128).

#include <vector>

#include "models/family.hpp"

namespace vvae {

Family dcae_family();  // with the preset dc-ae-f32t4c128

}  // namespace vvae
