// vvae._vvae: the Python binding of vvae's public API (include/vvae), nothing else: the engine
// (model_bindings.cpp), media (media_bindings.cpp) and the latent cache (cache_bindings.cpp), on
// what binding_util.hpp shares.
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
#include "binding_util.hpp"

namespace nb = nanobind;

NB_MODULE(_vvae, m) {
  m.doc() = "vvae's C++ engine (the public API of include/vvae); use the vvae package above it";

  static nb::exception<vvae::Error> error(m, "Error", PyExc_RuntimeError);
  vvae_python::g_cancelled_type = PyErr_NewExceptionWithDoc(
      "vvae._vvae.Cancelled",
      "An encode or decode cancelled by its progress callback (which returned False).", error.ptr(),
      nullptr);
  if (vvae_python::g_cancelled_type == nullptr) throw nb::python_error();
  m.attr("Cancelled") = nb::borrow(vvae_python::g_cancelled_type);

  vvae_python::bind_model(m);
  vvae_python::bind_media(m);
  vvae_python::bind_cache(m);
}
