#include "ops/dnnl_context.hpp"

#include <cstdlib>
#include <memory>

#include "core/cpu.hpp"
#include "vvae/error.hpp"

namespace vvae {
namespace {

// oneDNN's own ceiling follows vvae's level (VVAE_MAX_ISA), set before its first primitive.
dnnl::cpu_isa onednn_isa(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return dnnl::cpu_isa::avx512_core_bf16;
    case Isa::kAvx2:
      return dnnl::cpu_isa::avx2;
    case Isa::kSse41:
      break;
  }
  return dnnl::cpu_isa::sse41;
}

dnnl::engine make_engine() {
  if (!isa_cap_note().empty() &&
      dnnl::set_max_cpu_isa(onednn_isa(cpu_isa())) != dnnl::status::success)
    fail("oneDNN refused the instruction-set cap ", isa_cap_note());
  return dnnl::engine(dnnl::engine::kind::cpu, 0);
}

}  // namespace

dnnl::engine& cpu_engine() {
  static dnnl::engine engine = make_engine();
  return engine;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

dnnl::primitive_attr scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void execute_with_scratchpad(const dnnl::primitive& primitive,
                             std::unordered_map<int, dnnl::memory> args,
                             const dnnl::memory::desc& scratchpad) {
  // Plans count this buffer as the run's scratch (RunPlan::scratch_bytes), not as a tensor.
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<void, Free> buffer;
  thread_local size_t capacity = 0;
  const size_t bytes = scratchpad.get_size();
  if (bytes > 0) {
    if (capacity < bytes) {
      constexpr size_t kAlign = 64;  // oneDNN's kernels may use aligned vector loads
      const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
      buffer.reset(std::aligned_alloc(kAlign, rounded));
      if (!buffer) fail("out of memory for a ", rounded, "-byte convolution scratchpad");
      capacity = rounded;
    }
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(scratchpad, cpu_engine(), buffer.get()));
  }
  primitive.execute(cpu_stream(), args);
  cpu_stream().wait();
}

std::string onednn_isa_name() {
  cpu_engine();  // the cap applies from the engine's creation on
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}

}  // namespace vvae
