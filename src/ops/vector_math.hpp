#pragma once
// Branch-free math that compilers vectorise, and the macro that builds a hot loop for several
// instruction sets (AVX-512, AVX2, baseline) with the one for cpu_isa() picked at run time: vvae
// is built for generic x86-64, so without it its own kernels would run on SSE2, and the choice
// follows VVAE_MAX_ISA (GCC's target_clones would pick by the CPU alone).
//
//   VVAE_KERNEL void scale_body(float* p, int64_t n, float s) { ... }   // the loop, once
//   VVAE_MULTI_ISA(scale, (float* p, int64_t n, float s), (p, n, s))    // defines scale(...)

#include <algorithm>
#include <bit>
#include <cstdint>

#include "core/cpu.hpp"

#define VVAE_KERNEL static inline __attribute__((always_inline))
#if defined(__x86_64__)
#define VVAE_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define VVAE_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#define VVAE_TARGET_AVX512
#define VVAE_TARGET_AVX2
#endif

// Defines `name` (returning void) with `params`, dispatching to the body compiled for the level
// in use (`avx512`, `avx2` and `base` name it for each level); `args` are the parameter names in
// parentheses.
#define VVAE_MULTI_ISA_DISPATCH(name, params, args, avx512, avx2, base) \
  [[maybe_unused]] VVAE_TARGET_AVX512 void name##_avx512 params {       \
    avx512 args;                                                        \
  }                                                                     \
  [[maybe_unused]] VVAE_TARGET_AVX2 void name##_avx2 params {           \
    avx2 args;                                                          \
  }                                                                     \
  void name params {                                                    \
    switch (::vvae::cpu_isa()) {                                        \
      case ::vvae::Isa::kAvx512:                                        \
        return name##_avx512 args;                                      \
      case ::vvae::Isa::kAvx2:                                          \
        return name##_avx2 args;                                        \
      case ::vvae::Isa::kSse41:                                         \
        break;                                                          \
    }                                                                   \
    base args;                                                          \
  }

// The same body for every level.
#define VVAE_MULTI_ISA(name, params, args) \
  VVAE_MULTI_ISA_DISPATCH(name, params, args, name##_body, name##_body, name##_body)

// A body templated on its vector width, `template <int kLanes> VVAE_KERNEL void name_body`, taken
// at each level's register width: 16 floats (AVX-512), 8 (AVX2), 4 (SSE). GCC lowers a vector
// wider than the target's registers lane by lane where it compares or selects (a 16-float clamp
// under AVX2 became 16 scalar compares and blends through the stack, 5x slower), so a body must
// not use vectors wider than kLanes.
#define VVAE_MULTI_ISA_LANES(name, params, args) \
  VVAE_MULTI_ISA_DISPATCH(name, params, args, name##_body<16>, name##_body<8>, name##_body<4>)

namespace vvae {

// e^x within 2 ulp over the float range (Cody-Waite reduction by ln 2, then a degree-6
// polynomial on [-ln2/2, ln2/2]); inputs clamped to [-87.3, 88] so the result stays normal.
VVAE_KERNEL float exp_fast(float x) {
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

VVAE_KERNEL float silu_fast(float x) {
  return x / (1.0f + exp_fast(-x));
}

// The same on 4, 8 and 16 floats at once, in GCC's vector extensions: each caller's target
// attribute (VVAE_MULTI_ISA_LANES) lowers them to one SSE, AVX2 or AVX-512 register. The compiler
// does not vectorise the scalar form's clamp by itself. Every lane computes exactly what the
// scalar form does, so widths can be mixed freely.
using Float4 = float __attribute__((vector_size(16)));
using Int4 = int32_t __attribute__((vector_size(16)));
using Float8 = float __attribute__((vector_size(32)));
using Int8 = int32_t __attribute__((vector_size(32)));
using Float16 = float __attribute__((vector_size(64)));
using Int16 = int32_t __attribute__((vector_size(64)));

// The float and int vectors of kLanes lanes.
template <int kLanes>
struct Lanes;
template <>
struct Lanes<4> {
  using F = Float4;
  using I = Int4;
};
template <>
struct Lanes<8> {
  using F = Float8;
  using I = Int8;
};
template <>
struct Lanes<16> {
  using F = Float16;
  using I = Int16;
};

template <typename F>
VVAE_KERNEL F load_vec(const float* p) {
  F v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
template <typename F>
VVAE_KERNEL void store_vec(float* p, F v) {
  __builtin_memcpy(p, &v, sizeof v);
}
VVAE_KERNEL Float8 load8(const float* p) {
  return load_vec<Float8>(p);
}
VVAE_KERNEL void store8(float* p, Float8 v) {
  store_vec(p, v);
}

template <typename F, typename I>
VVAE_KERNEL F exp_fast_lanes(F x) {
  const F lo = F{} - 87.3f, hi = F{} + 88.0f;
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  constexpr float kRound = 12582912.0f;
  const F t = x * 1.44269504088896341f + kRound;
  const I n = std::bit_cast<I>(t) - std::bit_cast<int32_t>(kRound);
  const F nf = t - kRound;
  F r = x - nf * 0.693145751953125f;
  r = r - nf * 1.428606765330187045e-06f;
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * std::bit_cast<F>((n + 127) << 23);
}
VVAE_KERNEL Float4 exp_fast(Float4 x) {
  return exp_fast_lanes<Float4, Int4>(x);
}
VVAE_KERNEL Float8 exp_fast(Float8 x) {
  return exp_fast_lanes<Float8, Int8>(x);
}
VVAE_KERNEL Float16 exp_fast(Float16 x) {
  return exp_fast_lanes<Float16, Int16>(x);
}

template <typename F>
VVAE_KERNEL F silu_lanes(F x) {
  return x / (1.0f + exp_fast(-x));
}

// y[i] = silu(x[i]) for i in [0, n); y may be x. kLanes: the register width (VVAE_MULTI_ISA_LANES).
template <int kLanes>
VVAE_KERNEL void silu_span(const float* x, float* y, int64_t n) {
  using F = typename Lanes<kLanes>::F;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) store_vec(y + i, silu_lanes(load_vec<F>(x + i)));
  if constexpr (kLanes > 8)
    for (; i + 8 <= n; i += 8) store8(y + i, silu_lanes(load8(x + i)));
  for (; i < n; ++i) y[i] = silu_fast(x[i]);
}

// x[i] = e^(x[i] - shift) for i in [0, n); returns their sum, added in one order whatever kLanes
// is: 16 running sums (element i into sum i % 16 while 16 remain), then those in turn, then the
// rest one by one.
template <int kLanes>
VVAE_KERNEL float exp_shifted_span(float* x, int64_t n, float shift) {
  using F = typename Lanes<kLanes>::F;
  constexpr int kParts = 16 / kLanes;
  F total[kParts] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int part = 0; part < kParts; ++part) {
      float* at = x + i + part * kLanes;
      const F e = exp_fast(load_vec<F>(at) - shift);
      store_vec(at, e);
      total[part] += e;
    }
  float sum = 0.0f;
  for (int part = 0; part < kParts; ++part)
    for (int lane = 0; lane < kLanes; ++lane) sum += total[part][lane];
  for (; i < n; ++i) {
    x[i] = exp_fast(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

// out[i] = v[i] * silu(g[i]) for i in [0, n).
template <int kLanes>
VVAE_KERNEL void multiply_silu_span(const float* v, const float* g, int64_t n, float* out) {
  using F = typename Lanes<kLanes>::F;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    store_vec(out + i, load_vec<F>(v + i) * silu_lanes(load_vec<F>(g + i)));
  if constexpr (kLanes > 8)
    for (; i + 8 <= n; i += 8) store8(out + i, load8(v + i) * silu_lanes(load8(g + i)));
  for (; i < n; ++i) out[i] = v[i] * silu_fast(g[i]);
}

}  // namespace vvae
