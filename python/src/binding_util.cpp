#include "binding_util.hpp"

namespace vvae_python {
namespace {

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

}  // namespace

std::string python_type_name(nb::handle obj) {
  return nb::cast<std::string>(nb::str(obj.type()));
}

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

Input view_input(nb::handle obj, const char* name, size_t rank) {
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

std::atomic<int> g_threads{0};
PyObject* g_cancelled_type = nullptr;

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

}  // namespace vvae_python
