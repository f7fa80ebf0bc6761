#pragma once
// Branch-free math that compilers vectorise, and the attribute that builds a hot loop for
// several instruction sets (AVX-512, AVX2, baseline) with the best picked at load time: vvae is
// built for generic x86-64, so without it its own kernels would run on SSE2.

#include <algorithm>
#include <bit>
#include <cstdint>

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define VVAE_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VVAE_MULTIVERSION
#endif

namespace vvae {

// e^x within 2 ulp over the float range (Cody-Waite reduction by ln 2, then a degree-6
// polynomial on [-ln2/2, ln2/2]); inputs clamped to [-87.3, 88] so the result stays normal.
inline float exp_fast(float x) {
  x = std::min(std::max(x, -87.3f), 88.0f);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = x * 1.44269504088896341f + kRound;
  const int32_t n = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kRound);
  const float nf = t - kRound;
  float r = x - nf * 0.693145751953125f;
  r = r - nf * 1.428606765330187045e-06f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * std::bit_cast<float>((n + 127) << 23);
}

inline float silu_fast(float x) {
  return x / (1.0f + exp_fast(-x));
}

}  // namespace vvae
