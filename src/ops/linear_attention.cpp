#include "ops/linear_attention.hpp"

#include <dnnl.h>
#include <omp.h>

#include <algorithm>

#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

// Tokens per pass through the scratch buffers; the result does not depend on it beyond float32
// summation order.
constexpr int64_t kChunk = 1024;

void sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc) != dnnl_success)
    fail("linear attention: oneDNN sgemm failed");
}

struct Head {
  const float* qkv;  // q of token 0 of this sample; k at +dim, v at +2 * dim
  int64_t stride;    // channels of the part: the distance between tokens
  float* out;        // channel 0 of this head, token 0
};

// One head: vk = [v | 1]^T relu(k) over all tokens, then out = relu(q) vk^T normalised.
void attend(const Head& head, int64_t tokens, int64_t dim, int64_t out_stride, float eps,
            std::vector<float>& buf) {
  const int64_t d1 = dim + 1;
  buf.resize(static_cast<size_t>(kChunk * (dim + d1) + d1 * dim + kChunk * d1));
  float* kr = buf.data();         // (chunk, dim) relu(k)
  float* vp = kr + kChunk * dim;  // (chunk, dim + 1) [v | 1]
  float* vk = vp + kChunk * d1;   // (dim + 1, dim)
  float* o = vk + d1 * dim;       // (chunk, dim + 1)
  float* qr = kr;                 // (chunk, dim) relu(q), reusing kr in the second pass
  for (int64_t t0 = 0; t0 < tokens; t0 += kChunk) {
    const int64_t n = std::min(kChunk, tokens - t0);
    for (int64_t i = 0; i < n; ++i) {
      const float* row = head.qkv + (t0 + i) * head.stride;
      for (int64_t j = 0; j < dim; ++j) kr[i * dim + j] = std::max(row[dim + j], 0.0f);
      for (int64_t j = 0; j < dim; ++j) vp[i * d1 + j] = row[2 * dim + j];
      vp[i * d1 + dim] = 1.0f;
    }
    // vk (d1, dim) += vp^T (d1, n) * kr (n, dim)
    sgemm('T', 'N', d1, dim, n, vp, d1, kr, dim, t0 == 0 ? 0.0f : 1.0f, vk, dim);
  }
  for (int64_t t0 = 0; t0 < tokens; t0 += kChunk) {
    const int64_t n = std::min(kChunk, tokens - t0);
    for (int64_t i = 0; i < n; ++i) {
      const float* row = head.qkv + (t0 + i) * head.stride;
      for (int64_t j = 0; j < dim; ++j) qr[i * dim + j] = std::max(row[j], 0.0f);
    }
    // o (n, d1) = qr (n, dim) * vk^T (dim, d1)
    sgemm('N', 'T', n, d1, dim, qr, dim, vk, dim, 0.0f, o, d1);
    for (int64_t i = 0; i < n; ++i) {
      const float* oi = o + i * d1;
      float* dst = head.out + (t0 + i) * out_stride;
      const float denom = oi[dim] + eps;
      for (int64_t j = 0; j < dim; ++j) dst[j] = oi[j] / denom;
    }
  }
}

}  // namespace

Tensor relu_linear_attention(const std::vector<Tensor>& parts, int64_t dim, float eps) {
  if (parts.empty()) fail("linear attention needs at least one qkv tensor");
  const ProfileTimer profile_timer("linear_attention", parts.front().shape());
  if (dim < 1) fail("linear attention: head dim must be positive, got ", dim);
  const Tensor& first = parts.front();
  if (first.rank() < 2)
    fail("linear attention needs (N, positions..., C), got ", to_string(first.shape()));
  int64_t heads = 0;
  for (const Tensor& p : parts) {
    Shape a = p.shape(), b = first.shape();
    a.back() = b.back() = 0;
    if (a != b)
      fail("linear attention: qkv parts ", to_string(p.shape()), " and ", to_string(first.shape()),
           " differ in more than channels");
    if (p.dim(-1) % (3 * dim) != 0)
      fail("linear attention: ", p.dim(-1), " channels are not whole heads of 3 x ", dim);
    heads += p.dim(-1) / (3 * dim);
  }
  Shape shape = first.shape();
  shape.back() = heads * dim;
  Tensor out = Tensor::empty(shape);
  if (dry_run_active() || out.numel() == 0) return out;

  const int64_t samples = first.dim(0), tokens = first.numel() / (samples * first.dim(-1));
  const int64_t out_stride = heads * dim;
  std::vector<Head> work;
  for (int64_t n = 0; n < samples; ++n) {
    int64_t h = 0;
    for (const Tensor& p : parts) {
      const int64_t c = p.dim(-1);
      for (int64_t ph = 0; ph < c / (3 * dim); ++ph, ++h)
        work.push_back({p.data() + n * tokens * c + ph * 3 * dim, c,
                        out.data() + n * tokens * out_stride + h * dim});
    }
  }
  // Heads in parallel; each GEMM runs on its thread (oneDNN does not nest threads).
#pragma omp parallel
  {
    std::vector<float> buf;
#pragma omp for schedule(dynamic)
    for (size_t i = 0; i < work.size(); ++i) attend(work[i], tokens, dim, out_stride, eps, buf);
  }
  return out;
}

}  // namespace vvae
