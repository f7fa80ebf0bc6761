#pragma once
// The process-wide oneDNN CPU engine, and a stream per calling thread. Models may run on several
// threads at once (Python threads, a plan beside a run); oneDNN threads each primitive
// internally with OpenMP. Primitives are made with user-managed scratchpads (see
// scratchpad_attr), because oneDNN's own ("library") scratchpad is a buffer of the thread that
// made the primitive, which another thread executing it would share or miss.

#include <dnnl.hpp>
#include <string>
#include <unordered_map>

namespace vvae {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();
// Attributes that leave the scratchpad to the caller (DNNL_ARG_SCRATCHPAD at execution).
dnnl::primitive_attr scratchpad_attr();
// Runs `primitive` (made with scratchpad_attr) with `args` and a scratchpad as `scratchpad`
// describes, from a buffer of the calling thread that grows to the largest asked; then waits.
void execute_with_scratchpad(const dnnl::primitive& primitive,
                             std::unordered_map<int, dnnl::memory> args,
                             const dnnl::memory::desc& scratchpad);
// The instruction set oneDNN's kernels use ("avx2", "avx512_core_bf16", ...).
std::string onednn_isa_name();

}  // namespace vvae
