// vvae._vvae: the Python binding of vvae's public API (include/vvae), nothing else.
//
// Tensors cross without copies: an input NumPy array or torch tensor (anything with DLPack or the
// buffer protocol) is viewed as a vvae::Tensor over its memory, and an output vvae::Tensor is
// handed to NumPy or torch as an array over vvae's memory, owned by a capsule that keeps the
// tensor (and so its storage) alive. A torch tensor in gives torch tensors out; anything else
// gives NumPy arrays.
//
// Every long call releases the GIL while it computes. It takes it back once per step (a sample,
// a frame or a tile through the network) to call the progress callback, if any, and to let
// Ctrl-C through: a KeyboardInterrupt (or an exception the callback raises) cancels the call and
// is raised from it.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vvae/latent_cache.hpp"
#include "vvae/media.hpp"
#include "vvae/memory.hpp"
#include "vvae/model.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

// --- tensors ---------------------------------------------------------------------------------

enum class Framework { kNumpy, kTorch };

Framework framework_of(nb::handle obj) {
  const nb::object module = nb::getattr(obj.type(), "__module__", nb::none());
  if (nb::isinstance<nb::str>(module)) {
    const std::string name = nb::cast<std::string>(module);
    if (name == "torch" || name.rfind("torch.", 0) == 0) return Framework::kTorch;
  }
  return Framework::kNumpy;
}

Framework parse_framework(const std::string& name) {
  if (name == "numpy") return Framework::kNumpy;
  if (name == "torch") return Framework::kTorch;
  throw nb::value_error(("framework must be 'numpy' or 'torch', got '" + name + "'").c_str());
}

std::string python_type_name(nb::handle obj) {
  return nb::cast<std::string>(nb::str(obj.type()));
}

std::string shape_text(const nb::ndarray<nb::ro>& a) {
  std::string out = "(";
  for (size_t i = 0; i < a.ndim(); ++i) out += (i ? ", " : "") + std::to_string(a.shape(i));
  return out + (a.ndim() == 1 ? ",)" : ")");
}

std::string dtype_text(const nb::dlpack::dtype& d) {
  const char* kind = "?";
  switch (static_cast<nb::dlpack::dtype_code>(d.code)) {
    case nb::dlpack::dtype_code::Int:
      kind = "int";
      break;
    case nb::dlpack::dtype_code::UInt:
      kind = "uint";
      break;
    case nb::dlpack::dtype_code::Float:
      kind = "float";
      break;
    case nb::dlpack::dtype_code::Bfloat:
      kind = "bfloat";
      break;
    case nb::dlpack::dtype_code::Complex:
      kind = "complex";
      break;
    case nb::dlpack::dtype_code::Bool:
      kind = "bool";
      break;
    default:
      break;
  }
  return kind + std::to_string(d.bits) + (d.lanes != 1 ? "x" + std::to_string(d.lanes) : "");
}

// An input viewed as a vvae::Tensor over its own memory. The view owns nothing (the caller's
// object outlives the call), and a tensor without an owner is never written in place by vvae,
// so the caller's array is left as it was. Refuses, with one clear error, what vvae cannot view
// without a copy: TypeError for what is not a float32 array, ValueError for the wrong rank, a
// non-CPU device or a layout that is not C-contiguous.
struct Input {
  vvae::Tensor tensor;
  Framework framework = Framework::kNumpy;
};

Input view_input(nb::handle obj, const char* name, size_t rank = 5) {
  nb::ndarray<nb::ro> a;
  if (!nb::try_cast(obj, a, /*convert=*/false))
    throw nb::type_error((std::string(name) +
                          " must be a float32 NumPy array or torch tensor (DLPack or buffer "
                          "protocol), got " +
                          python_type_name(obj))
                             .c_str());
  if (a.device_type() != nb::device::cpu::value)
    throw nb::value_error(
        (std::string(name) + " must be on the CPU (vvae computes on the CPU); move it with .cpu()")
            .c_str());
  if (a.dtype() != nb::dtype<float>())
    throw nb::type_error((std::string(name) + " must be float32, got " + dtype_text(a.dtype()) +
                          " (convert it with .float() or .astype(numpy.float32))")
                             .c_str());
  if (a.ndim() != rank)
    throw nb::value_error((std::string(name) + " must have " + std::to_string(rank) +
                           " dimensions" + (rank == 5 ? " (B, C, T, H, W)" : "") + ", got shape " +
                           shape_text(a))
                              .c_str());
  // Row-major without gaps; a dimension of size 1 may carry any stride (torch and NumPy differ),
  // and an array without elements has no layout to speak of.
  int64_t expected = 1;
  for (size_t i = a.ndim(); a.size() > 0 && i-- > 0;) {
    if (a.shape(i) != 1 && a.stride_ptr() != nullptr && a.stride(i) != expected)
      throw nb::value_error((std::string(name) + " " + shape_text(a) +
                             " must be C-contiguous (row-major); make it so with .contiguous() or "
                             "numpy.ascontiguousarray()")
                                .c_str());
    expected *= static_cast<int64_t>(a.shape(i));
  }
  vvae::Shape shape;
  for (size_t i = 0; i < a.ndim(); ++i) shape.push_back(static_cast<int64_t>(a.shape(i)));
  Input in;
  in.framework = framework_of(obj);
  try {
    in.tensor = vvae::Tensor::borrow(shape, const_cast<float*>(static_cast<const float*>(a.data())),
                                     nullptr);
  } catch (const vvae::Error& e) {
    throw nb::value_error((std::string(name) + ": " + e.what()).c_str());
  }
  return in;
}

// An output over vvae's memory: the capsule owns a copy of the Tensor handle (sharing its
// storage), so the array stays valid after the call and no value is copied. None when undefined.
nb::object to_python(const vvae::Tensor& t, Framework framework) {
  if (!t.defined()) return nb::none();
  auto* kept = new vvae::Tensor(t);
  nb::capsule owner(kept, [](void* p) noexcept { delete static_cast<vvae::Tensor*>(p); });
  std::vector<size_t> shape(t.shape().begin(), t.shape().end());
  float* data = kept->data();
  if (framework == Framework::kTorch)
    return nb::object(
        nb::ndarray<nb::pytorch, float>(data, shape.size(), shape.data(), owner).cast());
  return nb::object(nb::ndarray<nb::numpy, float>(data, shape.size(), shape.data(), owner).cast());
}

// --- threads, progress, errors ---------------------------------------------------------------

// OpenMP's thread count is a per-thread setting: the count set from Python applies to every
// Python thread, so each call sets it on the thread that computes.
std::atomic<int> g_threads{0};  // 0: all cores

// vvae.Cancelled; never released, so that nothing touches Python after it has finalised.
PyObject* g_cancelled_type = nullptr;

// The progress hook of one call: calls the Python callback (if any) and checks for Ctrl-C, under
// the GIL. A Python exception cancels the call; it is kept and raised once the call has
// returned.
class Progress {
 public:
  explicit Progress(nb::object callback) : state_(std::make_shared<State>()) {
    state_->callback = std::move(callback);
  }
  vvae::ProgressCallback callback() const {
    std::shared_ptr<State> s = state_;
    return [s](int64_t done, int64_t total) {
      nb::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) {
        s->error.emplace();  // takes the pending KeyboardInterrupt
        return false;
      }
      if (s->callback.is_none()) return true;
      try {
        const nb::object result = s->callback(done, total);
        // False (not None) cancels, so a callback that returns nothing never does.
        return !(result.is(nb::handle(Py_False)));
      } catch (nb::python_error& e) {
        s->error.emplace(std::move(e));
        return false;
      }
    };
  }

  // After the call: re-raises what cancelled it.
  [[noreturn]] void raise_cancelled() const {
    if (state_->error) {
      nb::python_error e = std::move(*state_->error);
      state_->error.reset();
      throw e;
    }
    PyErr_SetString(g_cancelled_type, "cancelled by the progress callback");
    throw nb::python_error();
  }

 private:
  struct State {
    nb::object callback;
    std::optional<nb::python_error> error;
  };
  std::shared_ptr<State> state_;
};

// Runs `compute` without the GIL, on the thread count set from Python.
template <typename Fn>
auto compute(const Progress& progress, Fn&& fn) {
  try {
    nb::gil_scoped_release release;
    vvae::set_num_threads(g_threads.load());
    return fn();
  } catch (const vvae::Cancelled&) {
    progress.raise_cancelled();
  }
}

// Input checks the engine makes before it computes, raised as ValueError.
template <typename Fn>
auto checked(Fn&& fn) {
  try {
    return fn();
  } catch (const vvae::Error& e) {
    throw nb::value_error(e.what());
  }
}

// max_memory= of encode and decode: None (no cap), a byte count, or a size as the CLI takes it
// ("8G"); the tiling that fits it (Model::fit_encode / fit_decode), said through `said`.
// The cap max_memory= gives, in bytes: 0 for None.
int64_t memory_cap(const nb::object& max_memory) {
  if (max_memory.is_none()) return 0;
  int64_t cap = 0;
  if (nb::isinstance<nb::str>(max_memory))
    cap = checked([&] { return vvae::parse_memory_size(nb::cast<std::string>(max_memory)); });
  else if (nb::isinstance<nb::int_>(max_memory) && !nb::isinstance<nb::bool_>(max_memory))
    cap = nb::cast<int64_t>(max_memory);
  else
    throw nb::type_error("max_memory must be None, a byte count (int) or a size such as '8G'");
  if (cap <= 0) throw nb::value_error("max_memory must be positive");
  vvae::return_freed_memory_promptly();
  return cap;
}

std::optional<vvae::TilingOptions> capped_tiling(const vvae::Model& model, const vvae::Shape& shape,
                                                 bool encode, const nb::object& max_memory,
                                                 std::string& said) {
  const int64_t cap = memory_cap(max_memory);
  if (cap == 0) return std::nullopt;
  const vvae::FittedPlan fit =
      checked([&] { return encode ? model.fit_encode(shape, cap) : model.fit_decode(shape, cap); });
  said = fit.summary;
  return fit.tiling;
}

void check_finite(const vvae::Tensor& t, const char* name) {
  const int64_t bad = vvae::count_non_finite(t);
  if (bad > 0)
    throw nb::value_error((std::string(name) + " holds " + std::to_string(bad) +
                           " NaN or infinite values; vvae codes finite values only")
                              .c_str());
}

vvae::Precision parse_precision(const std::string& s) {
  if (s == "fp32") return vvae::Precision::kFp32;
  if (s == "bf16") return vvae::Precision::kBf16;
  throw nb::value_error(("precision must be 'fp32' or 'bf16', got '" + s + "'").c_str());
}

vvae::ConvAlgorithm parse_conv_algorithm(const std::string& s) {
  if (s == "auto") return vvae::ConvAlgorithm::kAuto;
  if (s == "winograd") return vvae::ConvAlgorithm::kWinograd;
  if (s == "direct") return vvae::ConvAlgorithm::kDirect;
  throw nb::value_error(
      ("conv_algorithm must be 'auto', 'winograd' or 'direct', got '" + s + "'").c_str());
}

nb::tuple shape_tuple(const vvae::Shape& s) {
  nb::list out;
  for (int64_t d : s) out.append(d);
  return nb::steal<nb::tuple>(PySequence_Tuple(out.ptr()));
}

vvae::Shape shape_of(const std::vector<int64_t>& s) {
  return vvae::Shape(s.begin(), s.end());
}

// Model.fit_encode / fit_decode: the line capped_tiling says.
auto fit_line(bool encode) {
  return [encode](const vvae::Model& self, const std::vector<int64_t>& s, nb::object max_memory) {
    std::string said;
    capped_tiling(self, shape_of(s), encode, max_memory, said);
    return said;
  };
}

// --- media -----------------------------------------------------------------------------------

nb::dict video_info_dict(const vvae::VideoInfo& v) {
  nb::dict d;
  d["container"] = v.container;
  d["codec"] = v.codec;
  d["width"] = v.width;
  d["height"] = v.height;
  d["fps"] = v.fps;
  d["frame_count"] = v.frame_count;
  d["still_image"] = v.still_image;
  d["alpha"] = v.alpha;
  return d;
}

nb::dict clip_dict(const vvae::Clip& c) {
  nb::dict d;
  d["source"] = c.source;
  d["video"] = video_info_dict(c.video);
  d["source_frames"] = c.source_frames;
  d["indices"] = c.indices;
  d["interval"] = c.interval;
  d["fps"] = c.fps;
  nb::dict g;
  g["scaled_height"] = c.geometry.scaled_height;
  g["scaled_width"] = c.geometry.scaled_width;
  g["top"] = c.geometry.top;
  g["left"] = c.geometry.left;
  g["height"] = c.geometry.height;
  g["width"] = c.geometry.width;
  d["resize_crop"] = g;
  d["bucket"] = c.bucket;
  d["notes"] = c.notes;
  d["warnings"] = c.warnings;
  return d;
}

nb::dict clip_result_dict(const vvae::ClipResult& r) {
  nb::dict d;
  d["path"] = r.entry.path;
  d["name"] = r.entry.name;
  d["ok"] = r.ok;
  d["resumed"] = r.resumed;
  d["error"] = r.error;
  d["frames"] = r.frames;
  d["height"] = r.height;
  d["width"] = r.width;
  d["fps"] = r.fps;
  d["psnr"] = r.psnr;
  d["ssim"] = r.ssim;
  d["seconds"] = r.seconds;
  d["psnr_frames"] = r.psnr_frames;
  d["ssim_frames"] = r.ssim_frames;
  d["latent_mean"] = r.moments.mean;
  d["latent_mean_sq"] = r.moments.mean_sq;
  d["latent_shape"] = shape_tuple(r.latent_shape);
  d["outputs"] = r.outputs;
  d["notes"] = r.notes;
  d["warnings"] = r.warnings;
  return d;
}

// --- the latent cache ------------------------------------------------------------------------

const char* cache_status_text(vvae::CacheRow::Status s) {
  switch (s) {
    case vvae::CacheRow::Status::kOk:
      return "ok";
    case vvae::CacheRow::Status::kFailed:
      return "failed";
    default:
      return "pending";
  }
}

std::string shape_x_text(const vvae::Shape& s) {
  std::string t;
  for (size_t i = 0; i < s.size(); ++i) t += (i ? "x" : "") + std::to_string(s[i]);
  return t;
}

// A settled row as the index writes it (latent_shape as "1x16x3x32x32"), with what the run
// knows beside: resumed, duplicate, seconds, notes, warnings.
nb::dict cache_row_dict(const vvae::CacheRow& r) {
  nb::dict d;
  d["row"] = r.entry.row;
  d["path"] = r.entry.path;
  d["status"] = cache_status_text(r.status);
  d["latents_path"] = r.status == vvae::CacheRow::Status::kOk ? r.latents_path : std::string();
  d["latent_shape"] = shape_x_text(r.latent_shape);
  d["error"] = r.error;
  d["latent_key"] = r.key;
  d["resumed"] = r.resumed;
  d["duplicate"] = r.duplicate;
  d["seconds"] = r.seconds;
  d["notes"] = r.notes;
  d["warnings"] = r.warnings;
  d["plan"] = r.plan;
  return d;
}

// The other way, for merge_cache_index: row, path, status, latents_path, latent_shape, error,
// latent_key (what cache_row_dict writes; other keys are ignored).
vvae::CacheRow cache_row_of(nb::handle obj) {
  if (!nb::isinstance<nb::dict>(obj))
    throw nb::type_error(("a cache row must be a dict, got " + python_type_name(obj)).c_str());
  nb::dict d = nb::borrow<nb::dict>(obj);
  const auto text = [&](const char* key, bool required) -> std::string {
    if (!d.contains(key)) {
      if (required) throw nb::value_error((std::string("a cache row lacks '") + key + "'").c_str());
      return "";
    }
    const nb::object v = d[key];
    if (v.is_none()) return "";
    return nb::cast<std::string>(nb::str(v));
  };
  vvae::CacheRow r;
  if (!d.contains("row")) throw nb::value_error("a cache row lacks 'row'");
  r.entry.row = nb::cast<int64_t>(nb::object(d["row"]));
  r.entry.path = text("path", true);
  const std::string status = text("status", true);
  if (status == "ok")
    r.status = vvae::CacheRow::Status::kOk;
  else if (status == "failed")
    r.status = vvae::CacheRow::Status::kFailed;
  else if (status == "pending")
    r.status = vvae::CacheRow::Status::kPending;
  else
    throw nb::value_error(
        ("a cache row's status must be ok, failed or pending, got '" + status + "'").c_str());
  r.latents_path = text("latents_path", false);
  r.error = text("error", false);
  r.key = text("latent_key", false);
  const std::string shape = text("latent_shape", false);
  size_t at = 0;
  while (at < shape.size()) {
    size_t end = shape.find('x', at);
    if (end == std::string::npos) end = shape.size();
    try {
      r.latent_shape.push_back(std::stoll(shape.substr(at, end - at)));
    } catch (const std::exception&) {
      throw nb::value_error(
          ("bad latent_shape '" + shape + "' (expected e.g. 1x16x3x32x32)").c_str());
    }
    at = end + 1;
  }
  if (r.status == vvae::CacheRow::Status::kOk && (r.latents_path.empty() || r.key.empty()))
    throw nb::value_error(("an ok cache row (row " + std::to_string(r.entry.row) +
                           ") needs latents_path and latent_key")
                              .c_str());
  return r;
}

// Which frames of a clip, at which size: the clip options of encode_manifest, the cache writer
// and reconstruct_clip (Python's keywords, as the CLI's flags).
vvae::ClipOptions clip_options(int64_t num_frames, int64_t frame_interval, double fps_max,
                               const std::string& resolution, int64_t height, int64_t width) {
  vvae::ClipOptions c;
  c.frames.num_frames = num_frames;
  c.frames.frame_interval = frame_interval;
  c.frames.fps_max = fps_max;
  c.resolution = resolution;
  c.height = height;
  c.width = width;
  return c;
}

vvae::EncodeOptions encode_options(bool sample, uint64_t seed) {
  vvae::EncodeOptions e;
  e.sample = sample;
  e.seed = seed;
  return e;
}

// Everything but the model and manifest, as the CLI's `encode --manifest` sets them.
vvae::LatentCacheOptions cache_options(const std::string& out_dir, bool resume, int64_t num_frames,
                                       int64_t frame_interval, double fps_max,
                                       const std::string& resolution, int64_t height, int64_t width,
                                       bool sample, uint64_t seed, const std::string& format,
                                       const std::string& shard, const std::string& precision,
                                       const std::string& conv_algorithm,
                                       const std::vector<std::string>& weights_files,
                                       const std::vector<std::string>& inputs,
                                       const nb::object& max_memory) {
  vvae::LatentCacheOptions o;
  o.max_memory = memory_cap(max_memory);
  o.out_dir = out_dir;
  o.resume = resume;
  o.clip = clip_options(num_frames, frame_interval, fps_max, resolution, height, width);
  o.encode = encode_options(sample, seed);
  o.compute.precision = parse_precision(precision);
  o.compute.conv_algorithm = parse_conv_algorithm(conv_algorithm);
  checked([&] {
    o.format = vvae::parse_cache_format(format);
    if (!shard.empty()) o.shard = vvae::parse_shard(shard);
    return 0;
  });
  o.weights_files = weights_files;
  for (const auto& f : inputs) o.inputs.add(f);
  return o;
}

}  // namespace

NB_MODULE(_vvae, m) {
  m.doc() = "vvae's C++ engine (the public API of include/vvae); use the vvae package above it";

  static nb::exception<vvae::Error> error(m, "Error", PyExc_RuntimeError);
  g_cancelled_type = PyErr_NewExceptionWithDoc(
      "vvae._vvae.Cancelled",
      "An encode or decode cancelled by its progress callback (which returned False).", error.ptr(),
      nullptr);
  if (g_cancelled_type == nullptr) throw nb::python_error();
  m.attr("Cancelled") = nb::borrow(g_cancelled_type);

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

  // --- media ---------------------------------------------------------------------------------
  m.def(
      "load_clip",
      [](const std::string& path, const vvae::Model* model, int64_t num_frames,
         int64_t frame_interval, double fps_max, const std::string& resolution, int64_t height,
         int64_t width, const std::string& framework) {
        const Framework f = parse_framework(framework);
        const vvae::ClipOptions o =
            clip_options(num_frames, frame_interval, fps_max, resolution, height, width);
        const vvae::Clip clip = [&] {
          nb::gil_scoped_release release;
          const vvae::ShapeRules rules =
              model != nullptr ? vvae::shape_rules(*model) : vvae::ShapeRules();
          return vvae::load_clip(path, o, rules);
        }();
        return nb::make_tuple(to_python(clip.x, f), clip_dict(clip));
      },
      "path"_a, "model"_a.none() = nb::none(), "num_frames"_a = 0, "frame_interval"_a = 1,
      "fps_max"_a = 0.0, "resolution"_a = "", "height"_a = 0, "width"_a = 0,
      "framework"_a = "numpy");

  m.def(
      "write_video",
      [](const std::string& path, nb::handle x, double fps, int crf, int64_t batch) {
        const Input in = view_input(x, "x");
        if (in.tensor.dim(1) != 3)
          throw nb::value_error("x must have 3 (RGB) channels to be written as frames");
        if (batch < 0 || batch >= in.tensor.dim(0))
          throw nb::value_error("batch is out of range for x");
        const bool image = vvae::is_image_output_path(path);
        if (!image && !vvae::is_video_output_path(path))
          throw nb::value_error(("cannot tell the format of '" + path +
                                 "': write .mp4, .mkv or .mov videos, or a .png image")
                                    .c_str());
        if (image && in.tensor.dim(2) != 1)
          throw nb::value_error(
              ("a .png holds one frame; x has " + std::to_string(in.tensor.dim(2))).c_str());
        nb::gil_scoped_release release;
        const vvae::RgbFrames rgb = vvae::tensor_to_rgb(in.tensor, batch);
        if (image) {
          vvae::write_png(path, rgb.frame(0), rgb.height, rgb.width);
        } else {
          vvae::VideoWriteOptions w;
          w.fps = fps;
          w.crf = crf;
          vvae::write_video(path, rgb, w);
        }
      },
      "path"_a, "x"_a, "fps"_a = 16.0, "crf"_a = 23, "batch"_a = 0);

  m.def(
      "clip_metrics",
      [](nb::handle a, nb::handle b) {
        const Input x = view_input(a, "a"), y = view_input(b, "b");
        if (x.tensor.shape() != y.tensor.shape()) throw nb::value_error("a and b differ in shape");
        if (x.tensor.dim(1) != 3) throw nb::value_error("a and b must be RGB (3 channels)");
        nb::list out;
        for (int64_t i = 0; i < x.tensor.dim(0); ++i) {
          const vvae::ClipMetrics c = [&] {
            nb::gil_scoped_release release;
            return vvae::clip_metrics(vvae::tensor_to_rgb(x.tensor, i),
                                      vvae::tensor_to_rgb(y.tensor, i));
          }();
          nb::dict d;
          d["psnr"] = c.mean_psnr;
          d["ssim"] = c.mean_ssim;
          d["psnr_frames"] = c.psnr;
          d["ssim_frames"] = c.ssim;
          out.append(d);
        }
        return out;
      },
      "a"_a, "b"_a,
      "PSNR and SSIM per clip of a batch, on the 8-bit frames Open-Sora's save_sample makes.");

  m.def(
      "write_latent_file",
      [](const std::string& path, const vvae::Model* model, nb::handle z, nb::handle mean,
         nb::handle logvar, const std::map<std::string, std::string>& metadata,
         std::optional<std::vector<int64_t>> input_shape, bool sampled, uint64_t seed) {
        vvae::EncodeResult r;
        r.z = view_input(z, "z").tensor;
        if (!mean.is_none()) r.mean = view_input(mean, "mean").tensor;
        if (!logvar.is_none()) r.logvar = view_input(logvar, "logvar").tensor;
        if (r.mean.defined() != r.logvar.defined())
          throw nb::value_error("give both mean and logvar, or neither");
        vvae::Metadata meta;
        if (model != nullptr) {
          vvae::EncodeOptions e;
          e.sample = sampled;
          e.seed = seed;
          meta = input_shape ? vvae::latent_metadata(model->info(), shape_of(*input_shape), e)
                             : vvae::model_metadata(model->info());
        }
        for (const auto& [k, v] : metadata) meta[k] = v;
        nb::gil_scoped_release release;
        vvae::write_latent_file(path, r, meta);
      },
      "path"_a, "model"_a.none() = nb::none(), "z"_a, "mean"_a = nb::none(),
      "logvar"_a = nb::none(), "metadata"_a = std::map<std::string, std::string>{},
      "input_shape"_a = nb::none(), "sampled"_a = false, "seed"_a = 0);

  m.def(
      "read_latent_file",
      [](const std::string& path, const std::string& name, const std::string& framework) {
        const Framework f = parse_framework(framework);
        const vvae::LatentFile file = [&] {
          nb::gil_scoped_release release;
          return vvae::read_latent_file(path, name);
        }();
        nb::dict d;
        d["z"] = to_python(file.z, f);
        d["mean"] = to_python(file.mean, f);
        d["logvar"] = to_python(file.logvar, f);
        d["metadata"] = file.metadata;
        return d;
      },
      "path"_a, "name"_a = "", "framework"_a = "numpy");

  m.def(
      "reconstruct_clip",
      [](const vvae::Model& model, const std::string& path, const std::string& out_dir,
         int64_t num_frames, int64_t frame_interval, double fps_max, const std::string& resolution,
         int64_t height, int64_t width, bool sample, uint64_t seed, double fps, int crf,
         bool compare, bool latents, const std::string& model_label,
         const std::vector<std::string>& inputs) {
        vvae::ReconstructOptions o;
        o.out_dir = out_dir;
        o.clip = clip_options(num_frames, frame_interval, fps_max, resolution, height, width);
        o.encode = encode_options(sample, seed);
        o.fps = fps;
        o.crf = crf;
        o.compare = compare;
        o.latents = latents;
        o.model_label = model_label;
        // No output may replace what the run reads: the clip and the model's files.
        o.inputs.add(path);
        for (const auto& input : inputs) o.inputs.add(input);
        const vvae::ClipResult r = [&] {
          nb::gil_scoped_release release;
          vvae::set_num_threads(g_threads.load());
          std::vector<vvae::ManifestEntry> entries = vvae::entries_from_paths({path});
          vvae::assign_names(entries);
          vvae::check_output_subfolders(out_dir);
          const std::string key = vvae::run_key(model.info(), o);
          // A clip an earlier run completed with the same key is not redone (as the CLI).
          if (auto done = vvae::completed_clip(entries.front(), o, key)) return *done;
          return vvae::reconstruct_clip(model, entries.front(), o, key);
        }();
        return clip_result_dict(r);
      },
      "model"_a, "path"_a, "out_dir"_a, "num_frames"_a = 0, "frame_interval"_a = 1,
      "fps_max"_a = 0.0, "resolution"_a = "", "height"_a = 0, "width"_a = 0, "sample"_a = false,
      "seed"_a = 0, "fps"_a = 0.0, "crf"_a = 23, "compare"_a = false, "latents"_a = false,
      "model_label"_a = "", "inputs"_a = std::vector<std::string>{});

  // --- the latent cache ----------------------------------------------------------------------
#define VVAE_CACHE_ARGS                                                                           \
  "out_dir"_a, "resume"_a = false, "num_frames"_a = 0, "frame_interval"_a = 1, "fps_max"_a = 0.0, \
               "resolution"_a = "", "height"_a = 0, "width"_a = 0, "sample"_a = false,            \
               "seed"_a = 0, "format"_a = "safetensors", "shard"_a = "", "precision"_a = "fp32",  \
               "conv_algorithm"_a = "auto", "weights_files"_a = std::vector<std::string>{},       \
               "inputs"_a = std::vector<std::string>{}, "max_memory"_a = nb::none()
  m.def(
      "encode_manifest",
      [](const vvae::Model& model, const std::string& manifest, const std::string& out_dir,
         bool resume, int64_t num_frames, int64_t frame_interval, double fps_max,
         const std::string& resolution, int64_t height, int64_t width, bool sample, uint64_t seed,
         const std::string& format, const std::string& shard, const std::string& precision,
         const std::string& conv_algorithm, const std::vector<std::string>& weights_files,
         const std::vector<std::string>& inputs, nb::object max_memory, nb::object progress) {
        vvae::LatentCacheOptions o = cache_options(
            out_dir, resume, num_frames, frame_interval, fps_max, resolution, height, width, sample,
            seed, format, shard, precision, conv_algorithm, weights_files, inputs, max_memory);
        // The progress callback runs under the GIL between clips; an exception it raises (or
        // Ctrl-C) stops the run there: the latents written so far stay, index.csv is not merged.
        std::optional<nb::python_error> stopped;
        struct Stop {};
        const vvae::CacheProgress report = [&](const vvae::CacheRow& r, int64_t done,
                                               int64_t total) {
          nb::gil_scoped_acquire gil;
          if (PyErr_CheckSignals() != 0) {
            stopped.emplace();
            throw Stop{};
          }
          if (progress.is_none()) return;
          try {
            progress(cache_row_dict(r), done, total);
          } catch (nb::python_error& e) {
            stopped.emplace(std::move(e));
            throw Stop{};
          }
        };
        std::optional<vvae::CacheRunResult> result;
        {
          nb::gil_scoped_release release;
          vvae::set_num_threads(g_threads.load());
          try {
            const vvae::ManifestTable table = vvae::read_manifest_table(manifest);
            o.inputs.add(manifest);
            for (const vvae::ManifestEntry& e : table.entries) o.inputs.add(e.path);
            result = vvae::encode_manifest(model, table, o, report);
          } catch (const Stop&) {
          }
        }
        if (stopped) {
          stopped->restore();
          throw nb::python_error();
        }
        nb::list rows;
        for (const vvae::CacheRow& r : result->rows) rows.append(cache_row_dict(r));
        nb::dict d;
        d["rows"] = rows;
        d["encoded"] = result->encoded;
        d["resumed"] = result->resumed;
        d["duplicates"] = result->duplicates;
        d["failed"] = result->failed;
        d["index_path"] = result->index_path;
        d["wall_seconds"] = result->wall_seconds;
        return d;
      },
      "model"_a, "manifest"_a, VVAE_CACHE_ARGS, "progress"_a = nb::none(),
      "`vvae encode --manifest`: every row of the CSV into the cache folder out_dir and its "
      "index.csv; returns {'rows', 'encoded', 'resumed', 'duplicates', 'failed', 'index_path', "
      "'wall_seconds'}.");

  nb::class_<vvae::LatentCacheWriter>(m, "LatentCacheWriter")
      .def(
          "__init__",
          [](vvae::LatentCacheWriter* self, const vvae::Model& model, const std::string& out_dir,
             bool resume, int64_t num_frames, int64_t frame_interval, double fps_max,
             const std::string& resolution, int64_t height, int64_t width, bool sample,
             uint64_t seed, const std::string& format, const std::string& shard,
             const std::string& precision, const std::string& conv_algorithm,
             const std::vector<std::string>& weights_files, const std::vector<std::string>& inputs,
             nb::object max_memory) {
            const vvae::LatentCacheOptions o =
                cache_options(out_dir, resume, num_frames, frame_interval, fps_max, resolution,
                              height, width, sample, seed, format, shard, precision, conv_algorithm,
                              weights_files, inputs, max_memory);
            nb::gil_scoped_release release;
            new (self) vvae::LatentCacheWriter(model, o);
          },
          "model"_a, VVAE_CACHE_ARGS, nb::keep_alive<1, 2>(),
          "The per-clip steps of encode_manifest (vvae::LatentCacheWriter); keeps the model.")
      .def_prop_ro("options_json", &vvae::LatentCacheWriter::options_json)
      .def(
          "encode_row",
          [](vvae::LatentCacheWriter& self, int64_t row, const std::string& path) {
            if (row < 0) throw nb::value_error("row must be >= 0 (a 0-based manifest row)");
            vvae::ManifestEntry e;
            e.row = row;
            e.path = path;
            const vvae::CacheRow r = [&] {
              nb::gil_scoped_release release;
              vvae::set_num_threads(g_threads.load());
              return self.encode_row(e);
            }();
            return cache_row_dict(r);
          },
          "row"_a, "path"_a,
          "Settles one manifest row (row: its 0-based number; path: as the manifest has it) and "
          "returns its index row; a clip that fails comes back with status 'failed'.");

  m.def(
      "merge_cache_index",
      [](const std::string& manifest, nb::handle rows, const std::string& out_dir,
         const std::string& options_json, const std::string& format) {
        vvae::LatentCacheOptions o;
        o.out_dir = out_dir;
        o.format = checked([&] { return vvae::parse_cache_format(format); });
        std::vector<vvae::CacheRow> settled;
        for (nb::handle r : rows) settled.push_back(cache_row_of(r));
        nb::gil_scoped_release release;
        const vvae::ManifestTable table = vvae::read_manifest_table(manifest);
        o.inputs.add(manifest);
        for (const vvae::ManifestEntry& e : table.entries) o.inputs.add(e.path);
        return vvae::merge_cache_index(table, settled, o, options_json);
      },
      "manifest"_a, "rows"_a, "out_dir"_a, "options_json"_a, "format"_a = "safetensors",
      "Merges settled rows of the manifest into out_dir/index.csv (and train.csv) as "
      "encode_manifest does; returns the index's path.");
  m.def(
      "prepare_cache_folder",
      [](const std::string& out_dir, const std::string& format,
         const std::vector<std::string>& inputs) {
        vvae::LatentCacheOptions o;
        o.out_dir = out_dir;
        o.format = checked([&] { return vvae::parse_cache_format(format); });
        for (const auto& f : inputs) o.inputs.add(f);
        nb::gil_scoped_release release;
        vvae::prepare_cache_folder(o);
      },
      "out_dir"_a, "format"_a = "safetensors", "inputs"_a = std::vector<std::string>{},
      "Fails (vvae.Error) when out_dir cannot be a cache folder; makes it when its parent "
      "exists.");
  m.def("cache_options_id", &vvae::cache_options_id, "options_json"_a);
#undef VVAE_CACHE_ARGS

  m.def(
      "read_manifest",
      [](const std::string& manifest) {
        const vvae::ManifestTable table = [&] {
          nb::gil_scoped_release release;
          return vvae::read_manifest_table(manifest);
        }();
        nb::list out;
        for (const vvae::ManifestEntry& e : table.entries) {
          nb::dict d;
          for (size_t c = 0; c < table.header.size(); ++c)
            d[table.header[c].c_str()] = table.rows[static_cast<size_t>(e.row)][c];
          d["row"] = e.row;
          d["path"] = e.path;
          out.append(d);
        }
        return out;
      },
      "manifest"_a,
      "The rows of a manifest CSV as dicts of its columns (all text), with 'row' (0-based).");

  m.def("format_memory", &vvae::format_memory, "bytes"_a);
}
