#include "ops/upsample_conv.hpp"

#include <chrono>
#include <cstring>
#include <mutex>

#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "core/threads.hpp"
#include "ops/resample.hpp"
#include "ops/winograd.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

// Which 2-tap kernel position original tap k (of 3) lands on in phase a.
int64_t phase_tap(int64_t k, int a) {
  return a == 0 ? (k == 0 ? 0 : 1) : (k == 2 ? 1 : 0);
}

// Phase `phase` kernels: original taps summed (in double) onto the 2-tap positions they share.
Tensor phase_weights(const Tensor& w, int dims, const std::array<bool, 3>& up,
                     const std::array<int64_t, 3>& k, int phase) {
  std::array<int64_t, 3> pk{1, 1, 1}, bit{0, 0, 0};
  Shape shape = {w.dim(0), w.dim(1)};
  for (int d = 0; d < dims; ++d) {
    const size_t i = static_cast<size_t>(d);
    pk[i] = up[i] ? 2 : k[i];
    bit[i] = up[i] ? (phase >> (dims - 1 - d)) & 1 : 0;
    shape.push_back(pk[i]);
  }
  if (w.data() == nullptr) return Tensor::borrow(shape, nullptr, nullptr);  // shapes only
  const int64_t pairs = w.dim(0) * w.dim(1), taps = k[0] * k[1] * k[2],
                ptaps = pk[0] * pk[1] * pk[2];
  std::vector<double> acc(static_cast<size_t>(pairs * ptaps), 0.0);
  for (int64_t p = 0; p < pairs; ++p)
    for (int64_t t0 = 0; t0 < k[0]; ++t0)
      for (int64_t t1 = 0; t1 < k[1]; ++t1)
        for (int64_t t2 = 0; t2 < k[2]; ++t2) {
          const int64_t m0 = up[0] ? phase_tap(t0, static_cast<int>(bit[0])) : t0;
          const int64_t m1 = up[1] ? phase_tap(t1, static_cast<int>(bit[1])) : t1;
          const int64_t m2 = up[2] ? phase_tap(t2, static_cast<int>(bit[2])) : t2;
          acc[static_cast<size_t>(p * ptaps + (m0 * pk[1] + m1) * pk[2] + m2)] +=
              w.data()[p * taps + (t0 * k[1] + t1) * k[2] + t2];
        }
  Tensor out = Tensor::empty(shape);
  for (size_t i = 0; i < acc.size(); ++i) out.data()[i] = static_cast<float>(acc[i]);
  return out;
}

}  // namespace

struct UpsampleConv::State {
  WeightSource weight;
  Tensor bias;
  std::unique_ptr<WinogradConv> winograd;  // when the shape allows it
  std::once_flag phases_made;
  std::vector<Conv> phases;  // indexed by phase bits, outermost axis most significant
};

UpsampleConv::UpsampleConv(const WeightSource& weight, const Tensor& bias, int spatial_dims,
                           std::array<bool, 3> upsampled)
    : spatial_dims_(spatial_dims),
      in_channels_(weight.dim(1)),
      out_channels_(weight.dim(0)),
      state_(std::make_shared<State>()) {
  if (weight.rank() != 2 + spatial_dims)
    fail("upsample conv weight ", to_string(weight.shape()), " is not ", spatial_dims, "-D");
  for (int d = 0; d < spatial_dims; ++d) {
    const size_t i = static_cast<size_t>(d);
    upsampled_[i] = upsampled[i];
    kernel_[i] = weight.dim(2 + d);
    if (upsampled_[i] && kernel_[i] != 3)
      fail("upsample conv needs 3-tap kernels on upsampled axes");
  }
  int axes = 0;
  for (int d = 0; d < spatial_dims; ++d) axes += upsampled_[static_cast<size_t>(d)] ? 1 : 0;
  if (axes == 0) fail("upsample conv upsamples no axis");
  state_->weight = weight;
  state_->bias = bias;
  if (WinogradConv::applies(weight.shape(), {1, 1, 1}, 1))
    state_->winograd = std::make_unique<WinogradConv>(weight, bias);
}

Tensor UpsampleConv::operator()(const Tensor& x) const {
  return run(x, nullptr);
}

Tensor UpsampleConv::padded(const Tensor& x, const PadSpec& pad_spec) const {
  for (int d = 0; d < spatial_dims_; ++d)
    if (upsampled_[static_cast<size_t>(d)] &&
        (pad_spec.lo[static_cast<size_t>(d)] != 1 || pad_spec.hi[static_cast<size_t>(d)] != 1))
      fail("internal: an upsampled axis is padded by one on both sides");
  return run(x, &pad_spec);
}

Tensor UpsampleConv::run(const Tensor& x, const PadSpec* extra) const {
  const int s = spatial_dims_;
  if (x.rank() != s + 2 || x.dim(-1) != in_channels_)
    fail("upsample conv expects a channels-last rank-", s + 2, " input with ", in_channels_,
         " channels, got ", to_string(x.shape()));
  const bool winograd = state_->winograd && winograd_selected(current_compute_options());
  if (extra != nullptr && !winograd) return run(pad(x, extra->lo, extra->hi, extra->mode), nullptr);
  // Output: upsampled axes 2 * (n_padded - 2), the others as a valid convolution.
  Shape out_shape = x.shape();
  out_shape.back() = out_channels();
  for (int d = 0; d < s; ++d) {
    const size_t i = static_cast<size_t>(d);
    const int64_t n = x.dim(1 + d) + (extra != nullptr ? extra->lo[i] + extra->hi[i] : 0);
    out_shape[i + 1] = upsampled_[i] ? 2 * (n - 2) : n - kernel_[i] + 1;
    if (out_shape[i + 1] < 1) fail("upsample conv input ", to_string(x.shape()), " is too small");
  }
  int64_t taps = 1;
  for (int d = 0; d < s; ++d) taps *= kernel_[static_cast<size_t>(d)];
  count_weight_use(state_.get(), (state_->weight.numel() + out_channels_) * int64_t{sizeof(float)});
  count_conv_flops(2 * numel(out_shape) * in_channels_ * taps);
  if (!winograd) return run_phases(x, out_shape);
  std::array<WinogradAxis, 3> axes;  // (T,) H, W as WinogradConv takes them
  for (int d = 0; d < s; ++d) {
    const size_t i = static_cast<size_t>(d);
    WinogradAxis& a = axes[static_cast<size_t>(3 - s + d)];
    a.size = x.dim(1 + d);
    a.kernel = kernel_[i];
    a.upsampled = upsampled_[i];
    if (extra != nullptr) {
      a.pad_lo = extra->lo[i];
      a.pad_hi = extra->hi[i];
      a.replicate = extra->mode == PadMode::kReplicate;
    }
  }
  Tensor y = Tensor::empty(out_shape);
  const int64_t executed = state_->winograd->executed_flops(x, axes[0], axes[1], axes[2]);
  count_executed_conv_flops(executed);
  const auto start = std::chrono::steady_clock::now();
  const double transforms = state_->winograd->run(x, y, axes[0], axes[1], axes[2], false);
  if (dry_run_active()) return y;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  count_conv_seconds(seconds);
  profile_record(s == 3 ? "conv winograd upsample 3x3x3" : "conv winograd upsample 3x3",
                 to_string(x.shape()) + " -> " + std::to_string(out_channels_), seconds, transforms,
                 executed);
  return y;
}

Tensor UpsampleConv::run_phases(const Tensor& x, const Shape& out_shape) const {
  const int s = spatial_dims_;
  // The phase kernels, made at the first real run; a dry run before it plans with shape-only
  // ones (it must not compute, and a plan should not allocate the model's weights).
  const auto make_phases = [&](bool shapes_only) {
    std::vector<Conv> phases;
    ConvGeometry g = ConvGeometry::uniform(s, 1, 0);
    g.counted = false;  // this op counts the direct convolution's FLOPs itself
    const Tensor weight = shapes_only || !state_->weight.has_data()
                              ? Tensor::borrow(state_->weight.shape(), nullptr, nullptr)
                              : state_->weight.tensor();
    for (int phase = 0; phase < (1 << s); ++phase) {
      bool valid = true;  // phases only vary over upsampled axes
      for (int d = 0; d < s; ++d)
        if (!upsampled_[static_cast<size_t>(d)] && ((phase >> (s - 1 - d)) & 1)) valid = false;
      phases.push_back(
          valid ? Conv(phase_weights(weight, s, upsampled_, kernel_, phase), state_->bias, g)
                : Conv());
    }
    return phases;
  };
  std::vector<Conv> planned;
  if (dry_run_active())
    planned = make_phases(true);
  else
    std::call_once(state_->phases_made, [&] { state_->phases = make_phases(false); });
  const std::vector<Conv>& phases_ = dry_run_active() ? planned : state_->phases;
  Tensor y = Tensor::empty(out_shape);
  std::array<int64_t, 3> out{1, 1, 1}, ph{1, 1, 1};  // output and phase-output sizes (D, H, W)

  // Every phase output has n - 1 positions on upsampled axes; phase bit a keeps rows a .. a + n-3.
  const int64_t c = out_channels(), batch = x.dim(0);
  for (int d = 0; d < s; ++d) {
    const size_t i = static_cast<size_t>(3 - s + d);
    out[i] = out_shape[static_cast<size_t>(d + 1)];
    ph[i] = upsampled_[static_cast<size_t>(d)] ? x.dim(1 + d) - 1 : out[i];
  }
  for (size_t phase = 0; phase < phases_.size(); ++phase) {
    if (!phases_[phase].defined()) continue;
    const Tensor p = phases_[phase](x);
    if (dry_run_active()) continue;
    std::array<int64_t, 3> bit{0, 0, 0}, step{1, 1, 1};
    for (int d = 0; d < s; ++d) {
      const size_t i = static_cast<size_t>(3 - s + d);
      const bool up = upsampled_[static_cast<size_t>(d)];
      bit[i] = up ? (static_cast<int64_t>(phase) >> (s - 1 - d)) & 1 : 0;
      step[i] = up ? 2 : 1;
    }
    // Output (n, o0, o1, o2) with o = step * j + bit reads phase position j + bit.
    const int64_t rows0 = out[0] / step[0], rows1 = out[1] / step[1], cols = out[2] / step[2];
    parallel_for(batch * rows0 * rows1, 8, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r / (rows0 * rows1), j0 = (r / rows1) % rows0, j1 = r % rows1;
        const int64_t o0 = step[0] * j0 + bit[0], o1 = step[1] * j1 + bit[1];
        const float* src =
            p.data() + (((n * ph[0] + j0 + bit[0]) * ph[1] + j1 + bit[1]) * ph[2] + bit[2]) * c;
        float* dst = y.data() + (((n * out[0] + o0) * out[1] + o1) * out[2] + bit[2]) * c;
        for (int64_t j2 = 0; j2 < cols; ++j2)
          std::memcpy(dst + j2 * step[2] * c, src + j2 * c, static_cast<size_t>(c) * sizeof(float));
      }
    });
  }
  return y;
}

}  // namespace vvae
