#pragma once
// The process-wide oneDNN CPU engine and stream. vvae submits primitives from one thread at a
// time; oneDNN threads each primitive internally with OpenMP.

#include <dnnl.hpp>

namespace vvae {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

}  // namespace vvae
