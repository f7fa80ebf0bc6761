#pragma once
// What the cache's writer (latent_cache.cpp) and its key and file checks (cache_keys.cpp) agree
// on about a latent file.

#include "vvae/latent_cache.hpp"

namespace vvae {

// The record of an Open-Sora (.pt) latent that holds vvae's metadata (its cache key and shape).
inline constexpr const char* kCacheMetadataRecord = "vvae/metadata.json";

inline const char* cache_file_extension(CacheFormat f) {
  return f == CacheFormat::kOpenSora ? ".pt" : ".safetensors";
}

}  // namespace vvae
