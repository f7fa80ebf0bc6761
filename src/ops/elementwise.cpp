#include "ops/elementwise.hpp"

#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "core/threads.hpp"
#include "vvae/error.hpp"

namespace vvae {

namespace {

template <int kLanes>
VVAE_KERNEL void activate_span_body(float* p, int64_t n, Activation act) {
  if (act == Activation::kSilu)
    silu_span<kLanes>(p, p, n);
  else if (act == Activation::kRelu)
    for (int64_t i = 0; i < n; ++i) p[i] = std::max(p[i], 0.0f);
}

VVAE_MULTI_ISA_LANES(activate_span, (float* p, int64_t n, Activation act), (p, n, act))

VVAE_KERNEL void add_span_body(float* d, const float* s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] += s[i];
}
VVAE_MULTI_ISA(add_span, (float* d, const float* s, int64_t n), (d, s, n))

template <int kLanes>
VVAE_KERNEL void multiply_silu_isa_body(const float* v, const float* g, int64_t n, float* out) {
  multiply_silu_span<kLanes>(v, g, n, out);
}
VVAE_MULTI_ISA_LANES(multiply_silu_isa, (const float* v, const float* g, int64_t n, float* out),
                     (v, g, n, out))

}  // namespace

void multiply_silu(const float* v, const float* g, int64_t n, float* out) {
  multiply_silu_isa(v, g, n, out);
}

void activate_inplace(Tensor& x, Activation act) {
  const ProfileTimer profile_timer("activate", x.shape());
  if (dry_run_active() || act == Activation::kNone) return;
  float* p = x.data();
  parallel_for(x.numel(), 4096,
               [&](int64_t i0, int64_t i1) { activate_span(p + i0, i1 - i0, act); });
}

void add_inplace(Tensor& dst, const Tensor& src) {
  const ProfileTimer profile_timer("add", dst.shape());
  if (dst.shape() != src.shape())
    fail("add: shapes ", to_string(dst.shape()), " and ", to_string(src.shape()), " differ");
  if (dry_run_active()) return;
  float* d = dst.data();
  const float* s = src.data();
  parallel_for(dst.numel(), 4096,
               [&](int64_t i0, int64_t i1) { add_span(d + i0, s + i0, i1 - i0); });
}

}  // namespace vvae
