#pragma once
// The process-wide oneDNN CPU engine and stream. vvae submits primitives from one thread at a
// time; oneDNN threads each primitive internally with OpenMP.

#include <dnnl.hpp>
#include <string>

namespace vvae {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();
// The instruction set oneDNN's kernels use ("avx2", "avx512_core_bf16", ...).
std::string onednn_isa_name();

}  // namespace vvae
