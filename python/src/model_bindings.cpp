// The engine: models (encode, decode, plans, memory caps), threads and the kernel report.
#include "binding_util.hpp"

namespace vvae_python {
namespace {

using namespace nb::literals;

// Model.fit_encode / fit_decode: the line capped_tiling says.
auto fit_line(bool encode) {
  return [encode](const vvae::Model& self, const std::vector<int64_t>& s, nb::object max_memory) {
    std::string said;
    capped_tiling(self, shape_of(s), encode, max_memory, said);
    return said;
  };
}

}  // namespace

void bind_model(nb::module_& m) {
  m.def("version", &vvae::version);
  m.def("preset_names", &vvae::preset_names);
  m.def(
      "kernel_report",
      [](const std::string& precision, const std::string& conv_algorithm) {
        vvae::ComputeOptions c;
        c.precision = parse_precision(precision);
        c.conv_algorithm = parse_conv_algorithm(conv_algorithm);
        return vvae::kernel_report(c);
      },
      "precision"_a = "fp32", "conv_algorithm"_a = "auto");
  m.def(
      "set_num_threads",
      [](int threads) {
        if (threads < 0) throw nb::value_error("threads must be >= 0 (0: all cores)");
        g_threads.store(threads);
        vvae::set_num_threads(threads);
      },
      "threads"_a, "Threads every vvae call uses (0: all cores), for every Python thread.");
  m.def("num_threads", [] {
    vvae::set_num_threads(g_threads.load());
    return vvae::num_threads();
  });

  nb::class_<vvae::ParameterInfo>(m, "ParameterInfo")
      .def_ro("name", &vvae::ParameterInfo::name)
      .def_prop_ro("shape", [](const vvae::ParameterInfo& p) { return shape_tuple(p.shape); });

  nb::class_<vvae::ModelInfo>(m, "ModelInfo")
      .def_ro("family", &vvae::ModelInfo::family)
      .def_ro("preset", &vvae::ModelInfo::preset)
      .def_ro("config_json", &vvae::ModelInfo::config_json)
      .def_ro("variational", &vvae::ModelInfo::variational)
      .def_ro("in_channels", &vvae::ModelInfo::in_channels)
      .def_ro("latent_channels", &vvae::ModelInfo::latent_channels)
      .def_ro("time_ratio", &vvae::ModelInfo::time_ratio)
      .def_ro("causal_time", &vvae::ModelInfo::causal_time)
      .def_ro("spatial_ratio", &vvae::ModelInfo::spatial_ratio)
      .def_ro("scale_factor", &vvae::ModelInfo::scale_factor)
      .def_ro("shift_factor", &vvae::ModelInfo::shift_factor)
      .def_ro("parameters", &vvae::ModelInfo::parameters)
      .def_ro("parameter_count", &vvae::ModelInfo::parameter_count)
      .def_ro("warnings", &vvae::ModelInfo::warnings);

  nb::class_<vvae::RunPlan>(m, "RunPlan")
      .def_prop_ro("input", [](const vvae::RunPlan& p) { return shape_tuple(p.input); })
      .def_prop_ro("output", [](const vvae::RunPlan& p) { return shape_tuple(p.output); })
      .def_ro("notes", &vvae::RunPlan::notes)
      .def_ro("weight_bytes", &vvae::RunPlan::weight_bytes)
      .def_ro("peak_activation_bytes", &vvae::RunPlan::peak_activation_bytes)
      .def_ro("scratch_bytes", &vvae::RunPlan::scratch_bytes)
      .def_ro("estimated_peak_bytes", &vvae::RunPlan::estimated_peak_bytes)
      .def_ro("conv_flops", &vvae::RunPlan::conv_flops)
      .def_ro("executed_conv_flops", &vvae::RunPlan::executed_conv_flops)
      .def_ro("largest_activation_bytes", &vvae::RunPlan::largest_activation_bytes);

  nb::class_<vvae::Model>(m, "Model")
      .def_static(
          "load",
          [](const std::string& model, const std::string& weights, const std::string& config,
             const std::string& preset, bool strict, bool without_weights,
             const std::map<std::string, std::string>& model_args, const std::string& precision,
             const std::string& conv_algorithm) {
            vvae::LoadOptions o;
            o.model = model;
            o.weights = weights;
            o.config = config;
            o.preset = preset;
            o.strict = strict;
            o.without_weights = without_weights;
            o.model_args = model_args;
            o.compute.precision = parse_precision(precision);
            o.compute.conv_algorithm = parse_conv_algorithm(conv_algorithm);
            nb::gil_scoped_release release;  // mapping and packing a checkpoint takes a while
            vvae::set_num_threads(g_threads.load());
            return vvae::Model::load(o);
          },
          "model"_a = "", "weights"_a = "", "config"_a = "", "preset"_a = "", "strict"_a = false,
          "without_weights"_a = false, "model_args"_a = std::map<std::string, std::string>{},
          "precision"_a = "fp32", "conv_algorithm"_a = "auto",
          "Loads a model directory, preset or checkpoint (see vvae::LoadOptions); model_args "
          "values are JSON text.")
      // A copy: holding a model's info does not keep the model (and its weights) alive.
      .def_prop_ro("info", &vvae::Model::info, nb::rv_policy::copy)
      .def(
          "encoded_shape",
          [](const vvae::Model& self, const std::vector<int64_t>& s) {
            return shape_tuple(checked([&] { return self.encoded_shape(shape_of(s)); }));
          },
          "shape"_a)
      .def(
          "decoded_shape",
          [](const vvae::Model& self, const std::vector<int64_t>& s) {
            return shape_tuple(checked([&] { return self.decoded_shape(shape_of(s)); }));
          },
          "shape"_a)
      .def(
          "plan_encode",
          [](const vvae::Model& self, const std::vector<int64_t>& s) {
            return checked([&] { return self.plan_encode(shape_of(s)); });
          },
          "shape"_a)
      .def(
          "plan_decode",
          [](const vvae::Model& self, const std::vector<int64_t>& s) {
            return checked([&] { return self.plan_decode(shape_of(s)); });
          },
          "shape"_a)
      .def(
          "encode",
          [](const vvae::Model& self, nb::handle x, bool sample, uint64_t seed, bool unscaled,
             nb::object progress, nb::object max_memory) {
            const Input in = view_input(x, "x");
            checked([&] { return self.encoded_shape(in.tensor.shape()); });
            check_finite(in.tensor, "x");
            const Progress hook(std::move(progress));
            vvae::EncodeOptions o;
            o.sample = sample;
            o.seed = seed;
            o.unscaled = unscaled;
            o.progress = hook.callback();
            std::string plan;
            o.tiling = capped_tiling(self, in.tensor.shape(), true, max_memory, plan);
            const vvae::EncodeResult r = compute(hook, [&] { return self.encode(in.tensor, o); });
            nb::dict out;
            out["z"] = to_python(r.z, in.framework);
            out["mean"] = to_python(r.mean, in.framework);
            out["logvar"] = to_python(r.logvar, in.framework);
            out["moments"] = to_python(r.moments, in.framework);
            out["plan"] = plan.empty() ? nb::none() : nb::cast(plan);
            return out;
          },
          "x"_a, "sample"_a = false, "seed"_a = 0, "unscaled"_a = false, "progress"_a = nb::none(),
          "max_memory"_a = nb::none(),
          "Encodes x (B, C, T, H, W) float32: {'z', 'mean', 'logvar', 'moments', 'plan'} (None "
          "where the family has no posterior). z is scaled as upstream's encode unless unscaled. "
          "max_memory (bytes, or a size such as '8G') caps the process's resident memory: the "
          "tiling that fits runs, and 'plan' says which (None without a cap).")
      .def(
          "decode",
          [](const vvae::Model& self, nb::handle z, bool unscaled, nb::object progress,
             nb::object max_memory, bool with_plan) -> nb::object {
            const Input in = view_input(z, "z");
            checked([&] { return self.decoded_shape(in.tensor.shape()); });
            check_finite(in.tensor, "z");
            const Progress hook(std::move(progress));
            vvae::DecodeOptions o;
            o.unscaled = unscaled;
            o.progress = hook.callback();
            std::string plan;
            o.tiling = capped_tiling(self, in.tensor.shape(), false, max_memory, plan);
            nb::object x =
                to_python(compute(hook, [&] { return self.decode(in.tensor, o); }), in.framework);
            if (!with_plan) return x;
            return nb::make_tuple(x, plan.empty() ? nb::none() : nb::cast(plan));
          },
          "z"_a, "unscaled"_a = false, "progress"_a = nb::none(), "max_memory"_a = nb::none(),
          "with_plan"_a = false,
          "Decodes z (B, C, T, H, W) float32 (scaled as encode returns it, unless unscaled); "
          "max_memory as for encode. with_plan: returns (x, plan), plan as encode's.")
      .def("fit_encode", fit_line(true), "shape"_a, "max_memory"_a,
           "The line saying which plan an encode of `shape` runs under max_memory (raises "
           "ValueError, naming the smallest cap, when none fits).")
      .def("fit_decode", fit_line(false), "shape"_a, "max_memory"_a,
           "As fit_encode, for a decode of the latent shape `shape`.");

  m.def(
      "sample_posterior",
      [](nb::handle mean, nb::handle logvar, uint64_t seed) {
        const Input a = view_input(mean, "mean"), b = view_input(logvar, "logvar");
        if (a.tensor.shape() != b.tensor.shape())
          throw nb::value_error("mean and logvar must have the same shape");
        const vvae::Tensor draw = [&] {
          nb::gil_scoped_release release;
          vvae::set_num_threads(g_threads.load());
          return vvae::sample_posterior(a.tensor, b.tensor, seed);
        }();
        return to_python(draw, a.framework);
      },
      "mean"_a, "logvar"_a, "seed"_a,
      "mean + exp(logvar / 2) * eps, eps drawn from `seed` (the draw of encode(sample=True)).");

  // What the zero-copy tests look at: an input viewed and handed back as an output, so its
  // memory must be the input's.
  m.def("_view_roundtrip", [](nb::handle x, size_t rank) {
    const Input in = view_input(x, "x", rank);
    // The view owns nothing; handing it out needs an owner that keeps the input alive.
    auto* kept = new nb::object(nb::borrow(x));
    nb::capsule owner(kept, [](void* p) noexcept { delete static_cast<nb::object*>(p); });
    std::vector<size_t> shape(in.tensor.shape().begin(), in.tensor.shape().end());
    auto* data = const_cast<float*>(in.tensor.data());
    if (in.framework == Framework::kTorch)
      return nb::object(
          nb::ndarray<nb::pytorch, float>(data, shape.size(), shape.data(), owner).cast());
    return nb::object(
        nb::ndarray<nb::numpy, float>(data, shape.size(), shape.data(), owner).cast());
  });
  m.def("_output_address", [](const vvae::Model& self, nb::handle x) {
    // The address of the z a fresh encode returns, and the array made of it: they must match.
    const Input in = view_input(x, "x");
    const vvae::EncodeResult r = [&] {
      nb::gil_scoped_release release;
      return self.encode(in.tensor);
    }();
    return nb::make_tuple(reinterpret_cast<uintptr_t>(r.z.data()), to_python(r.z, in.framework));
  });

  m.def("format_memory", &vvae::format_memory, "bytes"_a);
}

}  // namespace vvae_python
