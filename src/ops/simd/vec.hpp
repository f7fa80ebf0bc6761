#pragma once
// Float vectors for the kernels compiled once per instruction set (the *_sse41/_avx2/_avx512
// translation units): `Vec` is the widest vector the translation unit's flags allow, `Scalar`
// a one-lane stand-in with the same operations for channel tails, so a kernel is written once
// as a template over the vector type.
//
// Only included by those translation units. Everything here has internal linkage: an inline
// function with external linkage compiled with AVX-512 flags could be picked by the linker for
// the whole program and run on a CPU without them.

#include <immintrin.h>

#include <cstdint>

namespace vvae::simd {
namespace {

struct Scalar {
  static constexpr int kLanes = 1;
  float v;
  static Scalar load(const float* p) { return {*p}; }
  static Scalar set1(float x) { return {x}; }
  static Scalar zero() { return {0.0f}; }
  void store(float* p) const { *p = v; }
  friend Scalar operator+(Scalar a, Scalar b) { return {a.v + b.v}; }
  friend Scalar operator-(Scalar a, Scalar b) { return {a.v - b.v}; }
  friend Scalar operator*(Scalar a, Scalar b) { return {a.v * b.v}; }
  // a * b + c and c - a * b, fused where the instruction set has FMA.
  friend Scalar fmadd(Scalar a, Scalar b, Scalar c) {
#if defined(__FMA__)
    return {__builtin_fmaf(a.v, b.v, c.v)};
#else
    return {a.v * b.v + c.v};
#endif
  }
  friend Scalar fnmadd(Scalar a, Scalar b, Scalar c) {
#if defined(__FMA__)
    return {__builtin_fmaf(-a.v, b.v, c.v)};
#else
    return {c.v - a.v * b.v};
#endif
  }
};

#if defined(__AVX512F__)
struct Vec {
  static constexpr int kLanes = 16;
  __m512 v;
  static Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static Vec set1(float x) { return {_mm512_set1_ps(x)}; }
  static Vec zero() { return {_mm512_setzero_ps()}; }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  friend Vec operator+(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend Vec operator-(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend Vec fmadd(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  friend Vec fnmadd(Vec a, Vec b, Vec c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; }
};
#elif defined(__AVX2__) && defined(__FMA__)
struct Vec {
  static constexpr int kLanes = 8;
  __m256 v;
  static Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static Vec set1(float x) { return {_mm256_set1_ps(x)}; }
  static Vec zero() { return {_mm256_setzero_ps()}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  friend Vec operator+(Vec a, Vec b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend Vec operator-(Vec a, Vec b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend Vec fmadd(Vec a, Vec b, Vec c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  friend Vec fnmadd(Vec a, Vec b, Vec c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; }
};
#elif defined(__SSE4_1__)
struct Vec {
  static constexpr int kLanes = 4;
  __m128 v;
  static Vec load(const float* p) { return {_mm_loadu_ps(p)}; }
  static Vec set1(float x) { return {_mm_set1_ps(x)}; }
  static Vec zero() { return {_mm_setzero_ps()}; }
  void store(float* p) const { _mm_storeu_ps(p, v); }
  friend Vec operator+(Vec a, Vec b) { return {_mm_add_ps(a.v, b.v)}; }
  friend Vec operator-(Vec a, Vec b) { return {_mm_sub_ps(a.v, b.v)}; }
  friend Vec operator*(Vec a, Vec b) { return {_mm_mul_ps(a.v, b.v)}; }
  friend Vec fmadd(Vec a, Vec b, Vec c) { return {_mm_add_ps(_mm_mul_ps(a.v, b.v), c.v)}; }
  friend Vec fnmadd(Vec a, Vec b, Vec c) { return {_mm_sub_ps(c.v, _mm_mul_ps(a.v, b.v))}; }
};
#else
#error "simd/vec.hpp needs at least SSE4.1 flags"
#endif

}  // namespace
}  // namespace vvae::simd
