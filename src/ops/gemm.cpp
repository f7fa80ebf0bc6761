#include "ops/gemm.hpp"

#include <libxsmm.h>

#include <mutex>

#include "core/cpu.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

// LIBXSMM's code-generator target for vvae's level: its CPUID choice unless VVAE_MAX_ISA lowers it.
const char* libxsmm_target(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "skx";
    case Isa::kAvx2:
      return "hsw";
    case Isa::kSse41:
      break;
  }
  return "wsm";
}

void init_libxsmm() {
  static std::once_flag once;
  std::call_once(once, [] {
    libxsmm_init();
    if (!isa_cap_note().empty()) libxsmm_set_target_arch(libxsmm_target(cpu_isa()));
  });
}

}  // namespace

BatchGemm::BatchGemm(int64_t m, int64_t n, int64_t k, int64_t ldb, int64_t ldc, bool accumulate,
                     int64_t lda) {
  init_libxsmm();
  const libxsmm_blasint lda_ = static_cast<libxsmm_blasint>(lda > 0 ? lda : m),
                        ldb_ = static_cast<libxsmm_blasint>(ldb),
                        ldc_ = static_cast<libxsmm_blasint>(ldc);
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  const int flags = LIBXSMM_GEMM_FLAG_NONE, prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
  // LIBXSMM is column-major: C^T (m x n) = sum A_i^T (m x k) B_i^T (k x n).
  const auto kernel = libxsmm_smmdispatch_reducebatch_addr(
      static_cast<libxsmm_blasint>(m), static_cast<libxsmm_blasint>(n),
      static_cast<libxsmm_blasint>(k), &lda_, &ldb_, &ldc_, &alpha, &beta, &flags, &prefetch);
  if (kernel == nullptr)
    fail("LIBXSMM made no kernel for a ", n, "x", m, "x", k, " product at ",
         libxsmm_get_target_arch());
  kernel_ = reinterpret_cast<Kernel>(kernel);
}

void BatchGemm::operator()(const float* const* a, const float* const* b, int64_t count,
                           float* c) const {
  // LIBXSMM's kernels advance the operand lists in place: hand them copies.
  const float* a_copy[kMaxBatch];
  const float* b_copy[kMaxBatch];
  if (count > kMaxBatch) fail("internal: batch of ", count, " products exceeds ", kMaxBatch);
  for (int64_t i = 0; i < count; ++i) a_copy[i] = a[i], b_copy[i] = b[i];
  const unsigned long long n = static_cast<unsigned long long>(count);
  kernel_(a_copy, b_copy, c, &n);
}

std::string gemm_library_name() {
  init_libxsmm();
  return std::string("LIBXSMM ") + LIBXSMM_CONFIG_VERSION + " at " + libxsmm_get_target_arch();
}

}  // namespace vvae
