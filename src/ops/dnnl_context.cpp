#include "ops/dnnl_context.hpp"

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
  static dnnl::stream stream(cpu_engine());
  return stream;
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
