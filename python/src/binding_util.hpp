#pragma once
// What the binding's parts share (python/src/*_bindings.cpp): tensors across the boundary without
// copies, the thread count, progress and cancellation, errors as Python exceptions, and the
// conversions of options every part takes.
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

#include "vvae/media.hpp"
#include "vvae/memory.hpp"
#include "vvae/model.hpp"

namespace vvae_python {

namespace nb = nanobind;

// --- tensors ---------------------------------------------------------------------------------

enum class Framework { kNumpy, kTorch };

Framework framework_of(nb::handle obj);
std::string python_type_name(nb::handle obj);  // for messages: "<class 'list'>"
Framework parse_framework(const std::string& name);

// An input viewed as a vvae::Tensor over its own memory. The view owns nothing (the caller's
// object outlives the call), and a tensor without an owner is never written in place by vvae,
// so the caller's array is left as it was. Refuses, with one clear error, what vvae cannot view
// without a copy: TypeError for what is not a float32 array, ValueError for the wrong rank, a
// non-CPU device or a layout that is not C-contiguous.
struct Input {
  vvae::Tensor tensor;
  Framework framework = Framework::kNumpy;
};

Input view_input(nb::handle obj, const char* name, size_t rank = 5);
// An output over vvae's memory: the capsule owns a copy of the Tensor handle (sharing its
// storage), so the array stays valid after the call and no value is copied. None when undefined.
nb::object to_python(const vvae::Tensor& t, Framework framework);

// --- threads, progress, errors ---------------------------------------------------------------

// OpenMP's thread count is a per-thread setting: the count set from Python applies to every
// Python thread, so each call sets it on the thread that computes.
extern std::atomic<int> g_threads;  // 0: all cores

// vvae.Cancelled; never released, so that nothing touches Python after it has finalised.
extern PyObject* g_cancelled_type;

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
int64_t memory_cap(const nb::object& max_memory);
std::optional<vvae::TilingOptions> capped_tiling(const vvae::Model& model, const vvae::Shape& shape,
                                                 bool encode, const nb::object& max_memory,
                                                 std::string& said);
// ValueError when t holds NaN or infinity.
void check_finite(const vvae::Tensor& t, const char* name);
vvae::Precision parse_precision(const std::string& s);
vvae::ConvAlgorithm parse_conv_algorithm(const std::string& s);
nb::tuple shape_tuple(const vvae::Shape& s);
vvae::Shape shape_of(const std::vector<int64_t>& s);

// --- options ---------------------------------------------------------------------------------

// Which frames of a clip, at which size: the clip options of encode_manifest, the cache writer
// and reconstruct_clip (Python's keywords, as the CLI's flags).
vvae::ClipOptions clip_options(int64_t num_frames, int64_t frame_interval, double fps_max,
                               const std::string& resolution, int64_t height, int64_t width);
vvae::EncodeOptions encode_options(bool sample, uint64_t seed);

// --- the parts of the module -----------------------------------------------------------------

void bind_model(nb::module_& m);  // the engine: models, plans, threads, kernels
void bind_media(nb::module_& m);  // videos, clips, reconstruction
void bind_cache(nb::module_& m);  // the latent cache and manifests

}  // namespace vvae_python
