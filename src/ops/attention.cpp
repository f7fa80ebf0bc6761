#include "ops/attention.hpp"

#include <dnnl.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "ops/vector_math.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 256;

struct QueryBlock {
  int64_t n, begin, end, key_end;
};

// Query blocks never straddle a frame boundary, so each has a single key range [0, key_end).
std::vector<QueryBlock> plan_blocks(int64_t batch, int64_t tokens, int64_t frame_tokens) {
  const int64_t frame = frame_tokens > 0 ? frame_tokens : tokens;
  std::vector<QueryBlock> blocks;
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t f0 = 0; f0 < tokens; f0 += frame) {
      const int64_t f1 = std::min(tokens, f0 + frame);
      const int64_t key_end = frame_tokens > 0 ? f1 : tokens;
      for (int64_t q0 = f0; q0 < f1; q0 += kQueryBlock)
        blocks.push_back({n, q0, std::min(f1, q0 + kQueryBlock), key_end});
    }
  return blocks;
}

// s[j] = e^(s[j] - max) and their sum: the softmax's numerators, vectorised (std::exp one at a
// time took a third of the attention's time).
template <int kLanes>
VVAE_KERNEL void exponentials_into_body(float* s, int64_t n, float max, float* sum) {
  *sum = exp_shifted_span<kLanes>(s, n, max);
}
VVAE_MULTI_ISA_LANES(exponentials_into, (float* s, int64_t n, float max, float* sum),
                     (s, n, max, sum))
float exponentials(float* s, int64_t n, float max) {
  float sum = 0.0f;
  exponentials_into(s, n, max, &sum);
  return sum;
}

void sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (dnnl_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) != dnnl_success)
    fail("attention: oneDNN sgemm failed");
}

// One query block against all its keys, online softmax; writes the normalised output rows.
void attend_block(const QueryBlock& blk, const float* q, const float* k, const float* v, float* o,
                  int64_t dim, float scale, std::vector<float>& scores) {
  const int64_t rows = blk.end - blk.begin;
  std::vector<float> row_max(static_cast<size_t>(rows), -std::numeric_limits<float>::infinity());
  std::vector<float> row_sum(static_cast<size_t>(rows), 0.0f);
  float* out = o + blk.begin * dim;
  std::fill(out, out + rows * dim, 0.0f);

  for (int64_t k0 = 0; k0 < blk.key_end; k0 += kKeyBlock) {
    const int64_t kn = std::min(kKeyBlock, blk.key_end - k0);
    sgemm('N', 'T', rows, kn, dim, scale, q + blk.begin * dim, dim, k + k0 * dim, dim, 0.0f,
          scores.data(), kKeyBlock);
    for (int64_t i = 0; i < rows; ++i) {
      float* s = scores.data() + i * kKeyBlock;
      const float block_max = *std::max_element(s, s + kn);
      const float new_max = std::max(row_max[i], block_max);
      const float correction = std::exp(row_max[i] - new_max);
      const float sum = exponentials(s, kn, new_max);
      row_sum[i] = row_sum[i] * correction + sum;
      row_max[i] = new_max;
      if (correction != 1.0f)
        for (int64_t d = 0; d < dim; ++d) out[i * dim + d] *= correction;
    }
    sgemm('N', 'N', rows, dim, kn, 1.0f, scores.data(), kKeyBlock, v + k0 * dim, dim, 1.0f, out,
          dim);
  }
  for (int64_t i = 0; i < rows; ++i) {
    const float inv = 1.0f / row_sum[i];
    for (int64_t d = 0; d < dim; ++d) out[i * dim + d] *= inv;
  }
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                 int64_t frame_tokens) {
  const ProfileTimer profile_timer("attention", q.shape());
  if (q.rank() != 3 || q.shape() != k.shape() || q.shape() != v.shape())
    fail("attention needs q, k, v of one (N, L, D) shape, got ", to_string(q.shape()), ", ",
         to_string(k.shape()), ", ", to_string(v.shape()));
  const int64_t batch = q.dim(0), tokens = q.dim(1), dim = q.dim(2);
  if (frame_tokens < 0 || (frame_tokens > 0 && tokens % frame_tokens != 0))
    fail("attention: ", tokens, " tokens are not a whole number of ", frame_tokens,
         "-token frames");
  Tensor out = Tensor::empty(q.shape());
  if (dry_run_active() || q.numel() == 0) return out;

  const std::vector<QueryBlock> blocks = plan_blocks(batch, tokens, frame_tokens);
  const int64_t per_sample = tokens * dim;
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(kQueryBlock * kKeyBlock));
#pragma omp for schedule(dynamic)
    for (size_t b = 0; b < blocks.size(); ++b) {
      const QueryBlock& blk = blocks[b];
      const int64_t off = blk.n * per_sample;
      attend_block(blk, q.data() + off, k.data() + off, v.data() + off, out.data() + off, dim,
                   scale, scores);
    }
  }
  return out;
}

}  // namespace vvae
