#include "ops/elementwise.hpp"

#include "core/dry_run.hpp"
#include "core/threads.hpp"
#include "vvae/error.hpp"

namespace vvae {

void activate_inplace(Tensor& x, Activation act) {
  if (dry_run_active() || act == Activation::kNone) return;
  float* p = x.data();
  parallel_for(x.numel(), 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) p[i] = activate(p[i], act);
  });
}

void add_inplace(Tensor& dst, const Tensor& src) {
  if (dst.shape() != src.shape())
    fail("add: shapes ", to_string(dst.shape()), " and ", to_string(src.shape()), " differ");
  if (dry_run_active()) return;
  float* d = dst.data();
  const float* s = src.data();
  parallel_for(dst.numel(), 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) d[i] += s[i];
  });
}

}  // namespace vvae
