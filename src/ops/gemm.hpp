#pragma once
// The small matrix products inside vvae's convolutions, run by LIBXSMM's JIT kernels (chosen by
// measurement: bench/bench_ops.cpp, BENCHMARKS.md). vvae packs the operands; a kernel is made
// once per shape and called from any thread.
//
// Row-major terms: C (n x m, leading dimension ldc) (+)= sum over the batch of B_i (n x k, ldb) *
// A_i (k x m, packed: leading dimension lda, m by default). The sum runs inside the kernel, so C
// is written once; each element's products are added in the same order whatever the thread
// count.

#include <cstdint>
#include <string>

namespace vvae {

class BatchGemm {
 public:
  static constexpr int64_t kMaxBatch = 32;  // products summed in one call (a 3x3x3 kernel: 27)

  BatchGemm() = default;
  // accumulate: C += the sum (C is read), else C = the sum.
  BatchGemm(int64_t m, int64_t n, int64_t k, int64_t ldb, int64_t ldc, bool accumulate = false,
            int64_t lda = 0);  // lda: A's leading dimension, m when 0

  bool defined() const { return kernel_ != nullptr; }
  void operator()(const float* const* a, const float* const* b, int64_t count, float* c) const;

 private:
  using Kernel = void (*)(const float** a, const float** b, float* c,
                          const unsigned long long* count, ...);
  Kernel kernel_ = nullptr;
};

// Where the packed weights of a convolution put the (C_in x 32) panel of one kernel tap and one
// block of 32 output channels: base + tap_offset[tap] + block * block_stride, input channel
// rows row_stride floats apart (the products' A, leading dimension row_stride).
struct WeightPanels {
  static constexpr int64_t kBlock = 32;  // output channels per panel (the products' m)
  const float* base = nullptr;
  int64_t tap_offset[BatchGemm::kMaxBatch] = {};
  int64_t block_stride = 0;
  int64_t row_stride = kBlock;
  const float* panel(int64_t tap, int64_t block) const {
    return base + tap_offset[tap] + block * block_stride;
  }
};

// "LIBXSMM 1.17 at hsw" (the code generator's target) for `vvae info`.
std::string gemm_library_name();

}  // namespace vvae
