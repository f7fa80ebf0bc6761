#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011): the value for element i
// depends only on (seed, i), so sampling gives the same result for any thread count or order.

#include <cmath>
#include <cstdint>
#include <numbers>

namespace vvae {

struct Philox4x32 {
  static void round(uint32_t ctr[4], const uint32_t key[2]) {
    constexpr uint64_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
    const uint64_t p0 = kM0 * ctr[0];
    const uint64_t p1 = kM1 * ctr[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    const uint32_t out[4] = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
    for (int i = 0; i < 4; ++i) ctr[i] = out[i];
  }

  // Ten rounds over the 128-bit counter (index, stream) with the 64-bit key `seed`.
  static void generate(uint64_t seed, uint64_t index, uint64_t stream, uint32_t out[4]) {
    uint32_t ctr[4] = {static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
                       static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)};
    uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
    for (int r = 0; r < 10; ++r) {
      round(ctr, key);
      key[0] += 0x9E3779B9u;
      key[1] += 0xBB67AE85u;
    }
    for (int i = 0; i < 4; ++i) out[i] = ctr[i];
  }
};

// Uniform in (0, 1]: never 0, so log() below is finite.
inline double uniform_open0(uint32_t hi, uint32_t lo) {
  const uint64_t bits = (uint64_t{hi} << 21) ^ lo;  // 53 random bits
  return (static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) + 1.0) * 0x1.0p-53;
}

// Standard normal number for element `index` of stream `stream` (Box-Muller).
inline float normal_at(uint64_t seed, uint64_t index, uint64_t stream = 0) {
  uint32_t r[4];
  Philox4x32::generate(seed, index, stream, r);
  const double u1 = uniform_open0(r[0], r[1]);
  const double u2 = uniform_open0(r[2], r[3]);
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

// Uniform in [0, 1) for element `index`.
inline float uniform_at(uint64_t seed, uint64_t index, uint64_t stream = 0) {
  uint32_t r[4];
  Philox4x32::generate(seed, index, stream, r);
  return static_cast<float>((uniform_open0(r[0], r[1]) - 0x1.0p-53));
}

}  // namespace vvae
