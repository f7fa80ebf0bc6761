#include "ops/conv.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/cpu.hpp"
#include "core/dry_run.hpp"
#include "core/profile.hpp"
#include "ops/dnnl_context.hpp"
#include "ops/gemm.hpp"
#include "ops/gemm_conv.hpp"
#include "ops/resample.hpp"
#include "ops/winograd.hpp"
#include "vvae/error.hpp"

namespace vvae {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

ConvGeometry ConvGeometry::uniform(int spatial_dims, int64_t stride, int64_t pad) {
  ConvGeometry g;
  g.spatial_dims = spatial_dims;
  g.stride = {stride, stride, stride};
  g.pad_lo = {pad, pad, pad};
  g.pad_hi = {pad, pad, pad};
  return g;
}

namespace {

thread_local ComputeOptions t_compute;

// A reorder and the scratchpad it asks for.
struct Reorder {
  dnnl::reorder primitive;
  memory::desc scratchpad;
  void operator()(const memory& from, const memory& to) const {
    execute_with_scratchpad(primitive, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, scratchpad);
  }
};

// A primitive and how our float32 channels-last tensors reach it: when it wants another type
// (bf16 inputs) src and dst go through reorders.
struct Primitive {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
  memory weights;                   // packed in the layout this primitive wants
  memory::desc user_src, user_dst;  // float32 channels-last
  bool stage_src = false, stage_dst = false;
  Reorder src_in, dst_in, dst_out;
};

// What a plan needs of a primitive: its staging buffers and scratchpad. Plans keep only this of
// the shapes they describe: a oneDNN descriptor holds its kernels' set-up (15 MiB measured for
// the brgemm descriptors of the tilings a capped HunyuanVideo encode plans but never runs, on
// AVX-512), which the run would carry.
struct PlannedShape {
  memory::desc src, dst;  // the staging buffers' layouts, where staged
  bool stage_src = false, stage_dst = false;
  int64_t scratchpad_bytes = 0;
};

tag activation_tag(int spatial_dims) {
  return spatial_dims == 3 ? tag::ndhwc : tag::nhwc;
}

tag weights_tag(int spatial_dims, bool grouped) {
  if (grouped) return spatial_dims == 3 ? tag::goidhw : tag::goihw;
  return spatial_dims == 3 ? tag::oidhw : tag::oihw;
}

Reorder make_reorder(const memory::desc& from, const memory::desc& to) {
  const dnnl::reorder::primitive_desc pd(cpu_engine(), from, cpu_engine(), to, scratchpad_attr());
  return {dnnl::reorder(pd), pd.scratchpad_desc()};
}

// Scratch bytes as a tracked float tensor (counted by dry runs and memory statistics).
Tensor staging_buffer(const memory::desc& desc) {
  return Tensor::empty(
      {static_cast<int64_t>((desc.get_size() + sizeof(float) - 1) / sizeof(float))});
}

using Key = std::tuple<Shape, bool, Precision>;

}  // namespace

void check_compute_mode(const ComputeOptions& mode) {
  const CpuFeatures& cpu = detected_cpu_features();
  const std::string cap = isa_cap_note().empty() ? "" : " under " + isa_cap_note();
  if (mode.precision == Precision::kBf16 && !cpu_can_bf16())
    fail("--precision bf16 needs AVX512-BF16, which ",
         cpu.avx512_bf16 ? "is off" + cap : "this CPU (" + cpu.model + ") lacks",
         "; use --precision fp32");
  if (mode.precision == Precision::kBf16 && mode.conv_algorithm == ConvAlgorithm::kWinograd)
    fail("--conv-algo winograd is fp32 only; with --precision bf16 use --conv-algo auto or direct");
}

const char* conv_algorithm_name(ConvAlgorithm algorithm) {
  switch (algorithm) {
    case ConvAlgorithm::kWinograd:
      return "winograd";
    case ConvAlgorithm::kDirect:
      return "direct";
    case ConvAlgorithm::kAuto:
      break;
  }
  return "auto";
}

bool winograd_selected(const ComputeOptions& mode) {
  if (mode.precision != Precision::kFp32) return false;
  return mode.conv_algorithm == ConvAlgorithm::kAuto ||
         mode.conv_algorithm == ConvAlgorithm::kWinograd;
}

namespace {

// The implementation oneDNN picks for a representative convolution (3x3, 64 channels, 32x32).
std::string onednn_direct_impl(dt type) {
  const memory::dims src = {1, 64, 32, 32}, wei = {64, 64, 3, 3};
  const memory::desc src_md(src, type, tag::nhwc), dst_md(src, dt::f32, tag::nhwc);
  const memory::desc wei_md(wei, type, tag::any);
  try {
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                         dnnl::algorithm::convolution_direct, src_md, wei_md,
                                         memory::desc(), dst_md, {1, 1}, {1, 1}, {1, 1});
    return dnnl::convolution_forward::primitive_desc(desc, cpu_engine()).impl_info_str();
  } catch (const dnnl::error&) {
    return "unavailable";
  }
}

}  // namespace

std::vector<std::string> conv_kernel_report(const ComputeOptions& mode) {
  const bool bf16 = mode.precision == Precision::kBf16;
  const std::string direct = onednn_direct_impl(bf16 ? dt::bf16 : dt::f32);
  std::vector<std::string> lines;
  lines.push_back("oneDNN " + std::to_string(dnnl_version()->major) + "." +
                  std::to_string(dnnl_version()->minor) + "." +
                  std::to_string(dnnl_version()->patch) + " at " + onednn_isa_name());
  if (winograd_selected(mode)) {
    lines.push_back(std::string("3x3 stride-1 convolutions (2-D, 3-D, upsampling): vvae Winograd "
                                "F(4x4,3x3), transforms at ") +
                    isa_name(cpu_isa()) + ", products by " + gemm_library_name() + ", fp32");
    lines.push_back(std::string("strided and 1x1 convolutions: vvae tap-wise products by ") +
                    gemm_library_name() + ", fp32");
    lines.push_back("grouped and few-channel convolutions: oneDNN direct (" + direct + "), fp32");
  } else {
    lines.push_back("convolutions: oneDNN direct (" + direct + "), " +
                    (bf16 ? "bf16 with fp32 accumulation" : "fp32"));
  }
  return lines;
}

ComputeOptions current_compute_options() {
  return t_compute;
}
ComputeScope::ComputeScope(const ComputeOptions& options) : previous_(t_compute) {
  t_compute = options;
}
ComputeScope::~ComputeScope() {
  t_compute = previous_;
}

struct Conv::Impl {
  WeightSource weight;
  Tensor bias;
  ConvGeometry geometry;
  int64_t out_channels = 0, in_channels = 0;
  std::array<int64_t, 3> kernel{1, 1, 1};

  std::mutex mutex;
  std::map<Key, std::shared_ptr<Primitive>> primitives;
  std::map<Key, PlannedShape> planned;     // shapes only plans have seen
  std::unique_ptr<WinogradConv> winograd;  // 3x3 stride 1, when the shape allows it
  std::unique_ptr<GemmConv> gemm;          // the other vvae-engine convolutions
  std::unique_ptr<GemmConv> small_frames;  // Winograd's shapes where it does not pay off
  std::vector<std::pair<memory::desc, memory>> packed;  // packed weights by format and type

  memory::dims weight_dims() const {
    const int s = geometry.spatial_dims;
    memory::dims dims;
    if (geometry.groups > 1)
      dims = {geometry.groups, out_channels / geometry.groups, in_channels / geometry.groups};
    else
      dims = {out_channels, in_channels};
    for (int i = 0; i < s; ++i) dims.push_back(kernel[static_cast<size_t>(i)]);
    return dims;
  }

  // Weights in the layout and type `wanted`, reordered from the checkpoint tensor, whose file
  // pages are then returned (they are re-read from the file should another layout be needed).
  memory pack_weights(const memory::desc& wanted) {
    for (auto& [desc, mem] : packed)
      if (desc == wanted) return mem;
    memory::desc plain(weight_dims(), dt::f32,
                       weights_tag(geometry.spatial_dims, geometry.groups > 1));
    memory mem(wanted, cpu_engine());
    weight.read([&](const float* values) {
      memory source(plain, cpu_engine(), const_cast<float*>(values));
      make_reorder(plain, wanted)(source, mem);
    });
    packed.emplace_back(wanted, mem);
    return mem;
  }

  // What a plan needs of the primitive for this input shape and mode: a run's primitive, else
  // its descriptor's summary (the descriptor itself is dropped).
  PlannedShape plan_shape(const Shape& x, const Shape& y, bool accumulate) {
    const ComputeOptions mode = t_compute;
    std::lock_guard<std::mutex> lock(mutex);
    const Key key{x, accumulate, mode.precision};
    if (const auto it = primitives.find(key); it != primitives.end()) return summary(*it->second);
    auto it = planned.find(key);
    if (it == planned.end())
      it = planned.emplace(key, summary(*describe(x, y, accumulate, mode))).first;
    return it->second;
  }

  static PlannedShape summary(const Primitive& prim) {
    return {prim.pd.src_desc(), prim.pd.dst_desc(), prim.stage_src, prim.stage_dst,
            static_cast<int64_t>(prim.pd.scratchpad_desc().get_size())};
  }

  // The primitive for this input shape and mode, made on its first run.
  std::shared_ptr<Primitive> primitive(const Shape& x, const Shape& y, bool accumulate) {
    const ComputeOptions mode = t_compute;
    std::lock_guard<std::mutex> lock(mutex);
    const Key key{x, accumulate, mode.precision};
    auto it = primitives.find(key);
    if (it == primitives.end())
      it = primitives.emplace(key, describe(x, y, accumulate, mode)).first;
    Primitive& prim = *it->second;
    if (!prim.conv) {
      prim.weights = pack_weights(prim.pd.weights_desc());
      prim.conv = dnnl::convolution_forward(prim.pd);
      if (prim.stage_src) prim.src_in = make_reorder(prim.user_src, prim.pd.src_desc());
      if (prim.stage_dst) {
        prim.dst_out = make_reorder(prim.pd.dst_desc(), prim.user_dst);
        if (accumulate) prim.dst_in = make_reorder(prim.user_dst, prim.pd.dst_desc());
      }
    }
    return it->second;
  }

  std::shared_ptr<Primitive> describe(const Shape& x, const Shape& y, bool accumulate,
                                      const ComputeOptions& mode) const {
    const int s = geometry.spatial_dims;
    // oneDNN orders activation dims as (N, C, spatial...) whatever the memory layout.
    memory::dims src_dims = {x[0], x.back()}, dst_dims = {y[0], y.back()};
    memory::dims strides, pad_l, pad_r;
    for (int i = 0; i < s; ++i) {
      const size_t d = static_cast<size_t>(i);
      src_dims.push_back(x[d + 1]);
      dst_dims.push_back(y[d + 1]);
      strides.push_back(geometry.stride[d]);
      pad_l.push_back(geometry.pad_lo[d]);
      pad_r.push_back(geometry.pad_hi[d]);
    }
    auto prim = std::make_shared<Primitive>();
    prim->user_src = memory::desc(src_dims, dt::f32, activation_tag(s));
    prim->user_dst = memory::desc(dst_dims, dt::f32, activation_tag(s));

    const bool bf16 = mode.precision == Precision::kBf16;
    const dt compute = bf16 ? dt::bf16 : dt::f32;
    const tag act = activation_tag(s);
    memory::desc src_md(src_dims, compute, act), dst_md(dst_dims, dt::f32, act);
    memory::desc wei_md(weight_dims(), compute, tag::any);
    memory::desc bias_md =
        bias.numel() > 0 ? memory::desc({out_channels}, dt::f32, tag::a) : memory::desc();
    dnnl::primitive_attr attr = scratchpad_attr();
    if (accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      attr.set_post_ops(ops);
    }
    try {
      dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                           dnnl::algorithm::convolution_direct, src_md, wei_md,
                                           bias_md, dst_md, strides, pad_l, pad_r);
      prim->pd = dnnl::convolution_forward::primitive_desc(desc, attr, cpu_engine());
    } catch (const dnnl::error&) {
      if (!bf16) throw;
      fail("this CPU cannot run bf16 convolutions through oneDNN; use --precision fp32");
    }
    prim->stage_src = prim->pd.src_desc() != prim->user_src;
    prim->stage_dst = prim->pd.dst_desc() != prim->user_dst;
    return prim;
  }
};

Conv::Conv(WeightSource weight, Tensor bias, ConvGeometry geometry)
    : impl_(std::make_shared<Impl>()) {
  const int s = geometry.spatial_dims;
  if (s != 2 && s != 3) fail("convolution must be 2-D or 3-D, got ", s, "-D");
  if (weight.rank() != 2 + s)
    fail("convolution weight ", to_string(weight.shape()), " is not ", 2 + s, "-D");
  impl_->weight = std::move(weight);
  // A checkpoint's tensors sit at any 8-byte offset of the mapped file; oneDNN's SSE4.1 kernels
  // read the bias with aligned loads, so an unaligned one is copied (it is small).
  if (bias.data() != nullptr && reinterpret_cast<uintptr_t>(bias.data()) % 64 != 0)
    bias = bias.clone();
  impl_->bias = std::move(bias);
  impl_->geometry = geometry;
  impl_->out_channels = impl_->weight.dim(0);
  impl_->in_channels = impl_->weight.dim(1) * geometry.groups;
  for (int i = 0; i < s; ++i) impl_->kernel[static_cast<size_t>(i)] = impl_->weight.dim(2 + i);
  if (geometry.groups < 1 || impl_->out_channels % geometry.groups != 0)
    fail("convolution groups ", geometry.groups, " do not divide ", impl_->out_channels,
         " outputs");
  if (impl_->bias.numel() > 0 && impl_->bias.numel() != impl_->out_channels)
    fail("convolution bias ", to_string(impl_->bias.shape()), " does not match ",
         impl_->out_channels, " outputs");
  if (WinogradConv::applies(impl_->weight.shape(), geometry.stride, geometry.groups)) {
    impl_->winograd = std::make_unique<WinogradConv>(impl_->weight, impl_->bias);
    if (GemmConv::applies(impl_->weight.shape(), geometry))
      impl_->small_frames = std::make_unique<GemmConv>(impl_->weight, impl_->bias, geometry);
  } else if (GemmConv::applies(impl_->weight.shape(), geometry))
    impl_->gemm = std::make_unique<GemmConv>(impl_->weight, impl_->bias, geometry);
}

std::string Conv::profile_name(const char* algorithm) const {
  const ConvGeometry& g = impl_->geometry;
  std::string name = std::string("conv ") + algorithm + " ";
  for (int i = 0; i < g.spatial_dims; ++i) {
    if (i > 0) name += 'x';
    name += std::to_string(impl_->kernel[static_cast<size_t>(i)]);
  }
  if (g.stride[0] != 1 || g.stride[static_cast<size_t>(g.spatial_dims - 1)] != 1) name += " s2";
  if (g.groups > 1) name += " g" + std::to_string(g.groups);
  return name;
}

std::string Conv::profile_shape(const Shape& x) const {
  return to_string(x) + " -> " + std::to_string(impl_->out_channels);
}

int64_t Conv::in_channels() const {
  return impl_->in_channels;
}
int64_t Conv::out_channels() const {
  return impl_->out_channels;
}

Shape Conv::output_shape(const Shape& x) const {
  const auto& g = impl_->geometry;
  const int s = g.spatial_dims;
  if (static_cast<int>(x.size()) != s + 2)
    fail("a ", s, "-D convolution needs a rank-", s + 2, " input, got ", to_string(x));
  if (x.back() != impl_->in_channels)
    fail("convolution expects ", impl_->in_channels, " input channels, got ", x.back());
  Shape y = x;
  y.back() = impl_->out_channels;
  for (int i = 0; i < s; ++i) {
    const size_t d = static_cast<size_t>(i);
    const int64_t span = x[d + 1] + g.pad_lo[d] + g.pad_hi[d] - impl_->kernel[d];
    if (span < 0) fail("input ", to_string(x), " is smaller than the convolution kernel");
    y[d + 1] = span / g.stride[d] + 1;
  }
  return y;
}

Tensor Conv::operator()(const Tensor& x) const {
  Tensor y = Tensor::empty(output_shape(x.shape()));
  run(x, y, false, nullptr);
  return y;
}

void Conv::accumulate(const Tensor& x, Tensor& dst) const {
  if (output_shape(x.shape()) != dst.shape())
    fail("convolution output ", to_string(output_shape(x.shape())), " does not match ",
         to_string(dst.shape()));
  run(x, dst, true, nullptr);
}

namespace {

// The axes of a convolution with this geometry, in WinogradConv's terms, reading x padded by
// lo / hi more (replicate: by copies of its edges) before the geometry's zero padding.
std::array<WinogradAxis, 3> winograd_axes(const Shape& x, const ConvGeometry& g, int64_t taps_t,
                                          const PadSpec* extra) {
  std::array<WinogradAxis, 3> axes;
  const int s = g.spatial_dims;
  for (int i = 0; i < s; ++i) {
    const size_t d = static_cast<size_t>(i);
    WinogradAxis& a = axes[static_cast<size_t>(3 - s + i)];
    a.size = x[d + 1];
    a.kernel = s == 3 && i == 0 ? taps_t : 3;
    a.pad_lo = g.pad_lo[d] + (extra != nullptr ? extra->lo[d] : 0);
    a.pad_hi = g.pad_hi[d] + (extra != nullptr ? extra->hi[d] : 0);
    a.replicate = extra != nullptr && extra->mode == PadMode::kReplicate;
  }
  return axes;
}

Shape padded_shape(const Shape& x, const PadSpec& p) {
  Shape out = x;
  for (size_t d = 0; d < p.lo.size(); ++d) out[d + 1] += p.lo[d] + p.hi[d];
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Tensor Conv::padded(const Tensor& x, const PadSpec& pad_spec) const {
  Tensor y = Tensor::empty(output_shape(padded_shape(x.shape(), pad_spec)));
  run(x, y, false, &pad_spec);
  return y;
}

void Conv::accumulate_padded(const Tensor& x, const PadSpec& pad_spec, Tensor& dst) const {
  if (output_shape(padded_shape(x.shape(), pad_spec)) != dst.shape())
    fail("convolution output does not match ", to_string(dst.shape()));
  run(x, dst, true, &pad_spec);
}

void Conv::run(const Tensor& x, Tensor& dst, bool accumulate, const PadSpec* extra) const {
  const auto& g = impl_->geometry;
  const bool own_pads =
      std::any_of(g.pad_lo.begin(), g.pad_lo.end(), [](int64_t p) { return p; }) ||
      std::any_of(g.pad_hi.begin(), g.pad_hi.end(), [](int64_t p) { return p; });
  const bool engine = winograd_selected(t_compute);
  std::array<WinogradAxis, 3> axes;
  if (impl_->winograd && engine)
    axes = winograd_axes(x.shape(), impl_->geometry, impl_->kernel[0], extra);
  const bool by_winograd =
      impl_->winograd && engine &&
      (!impl_->small_frames || WinogradConv::pays_off(x.dim(0), axes[1], axes[2]));
  if (extra != nullptr && (!by_winograd || (own_pads && extra->mode != PadMode::kZeros))) {
    // Paths without index maps pad a copy (as does replicate padding before zero padding).
    run(pad(x, extra->lo, extra->hi, extra->mode), dst, accumulate, nullptr);
    return;
  }
  count_weight_use(impl_.get(),
                   (impl_->weight.numel() + impl_->out_channels) * int64_t{sizeof(float)});
  // Each output value costs (C_in / groups) * kernel volume multiply-adds.
  const int64_t flops = 2 * dst.numel() * impl_->weight.numel() / impl_->out_channels;
  if (impl_->geometry.counted) count_conv_flops(flops);
  if (by_winograd) {
    const auto& [t, h, w] = axes;
    const int64_t executed = impl_->winograd->executed_flops(x, t, h, w);
    count_executed_conv_flops(executed);
    const auto start = std::chrono::steady_clock::now();
    const double transforms = impl_->winograd->run(x, dst, t, h, w, accumulate);
    if (dry_run_active()) return;
    const double seconds = seconds_since(start);
    count_conv_seconds(seconds);
    profile_record(profile_name("winograd"), profile_shape(x.shape()), seconds, transforms,
                   executed);
    return;
  }
  if ((impl_->gemm || impl_->small_frames) && engine) {
    count_executed_conv_flops(flops);
    const auto start = std::chrono::steady_clock::now();
    if (impl_->gemm)
      impl_->gemm->run(x, dst, accumulate);
    else if (!dry_run_active())
      impl_->small_frames->run(x, dst, accumulate, impl_->winograd->weight_panels());
    if (dry_run_active()) return;
    const double seconds = seconds_since(start);
    count_conv_seconds(seconds);
    profile_record(profile_name("gemm"), profile_shape(x.shape()), seconds, 0, flops);
    return;
  }
  count_executed_conv_flops(flops);
  if (dry_run_active()) {
    const PlannedShape planned = impl_->plan_shape(x.shape(), dst.shape(), accumulate);
    note_scratchpad_bytes(planned.scratchpad_bytes);
    // The staging buffers, live together as in a run, for the plan's peak.
    const Tensor src_stage = planned.stage_src ? staging_buffer(planned.src) : Tensor();
    const Tensor dst_stage = planned.stage_dst ? staging_buffer(planned.dst) : Tensor();
    return;
  }
  auto prim = impl_->primitive(x.shape(), dst.shape(), accumulate);
  Tensor src_stage = prim->stage_src ? staging_buffer(prim->pd.src_desc()) : Tensor();
  Tensor dst_stage = prim->stage_dst ? staging_buffer(prim->pd.dst_desc()) : Tensor();

  memory user_src(prim->user_src, cpu_engine(), const_cast<float*>(x.data()));
  memory user_dst(prim->user_dst, cpu_engine(), dst.data());
  memory src = user_src, out = user_dst;
  if (prim->stage_src) {
    src = memory(prim->pd.src_desc(), cpu_engine(), src_stage.data());
    prim->src_in(user_src, src);
  }
  if (prim->stage_dst) {
    out = memory(prim->pd.dst_desc(), cpu_engine(), dst_stage.data());
    if (accumulate) prim->dst_in(user_dst, out);
  }
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, prim->weights}, {DNNL_ARG_DST, out}};
  if (impl_->bias.numel() > 0)
    args.emplace(DNNL_ARG_BIAS, memory(prim->pd.bias_desc(), cpu_engine(),
                                       const_cast<float*>(impl_->bias.data())));
  const auto start = std::chrono::steady_clock::now();
  execute_with_scratchpad(prim->conv, std::move(args), prim->pd.scratchpad_desc());
  const double seconds = seconds_since(start);
  count_conv_seconds(seconds);
  profile_record(profile_name("direct"), profile_shape(x.shape()), seconds, 0, flops);
  if (prim->stage_dst) prim->dst_out(out, user_dst);
}

}  // namespace vvae
