#include "core/cpu.hpp"

#include <cpuid.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "vvae/error.hpp"

namespace vvae {
namespace {

std::string brand_string() {
  unsigned regs[12] = {};
  unsigned max_leaf = __get_cpuid_max(0x80000000u, nullptr);
  if (max_leaf < 0x80000004u) return "unknown x86-64 CPU";
  for (unsigned i = 0; i < 3; ++i)
    __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                &regs[4 * i + 3]);
  char text[49] = {};
  std::memcpy(text, regs, 48);
  std::string s(text);
  const auto first = s.find_first_not_of(' ');
  const auto last = s.find_last_not_of(' ');
  return first == std::string::npos ? "unknown x86-64 CPU" : s.substr(first, last - first + 1);
}

CpuFeatures detect() {
  CpuFeatures f;
  __builtin_cpu_init();
  f.model = brand_string();
  // __builtin_cpu_supports also checks that the OS saves the YMM/ZMM state (XGETBV).
  f.sse41 = __builtin_cpu_supports("sse4.1");
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  // F16C from CPUID itself: clang's __builtin_cpu_supports does not know it. Its instructions
  // use YMM registers, so the OS must save them too: the "avx" check says so.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  f.f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0 &&
           __builtin_cpu_supports("avx");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
  return f;
}

Isa best_isa(const CpuFeatures& f) {
  if (f.avx512 && f.avx2 && f.fma) return Isa::kAvx512;
  if (f.avx2 && f.fma) return Isa::kAvx2;
  return Isa::kSse41;
}

Isa parse_cap(const std::string& text) {
  if (text == "avx512") return Isa::kAvx512;
  if (text == "avx2") return Isa::kAvx2;
  if (text == "sse41") return Isa::kSse41;
  fail("VVAE_MAX_ISA=", text, " is not one of avx512, avx2, sse41");
}

struct Level {
  Isa isa = Isa::kSse41;
  std::string cap_note;
};

Level resolve_level() {
  const CpuFeatures& f = detected_cpu_features();
  const Isa best = best_isa(f);
  if (!f.sse41) fail("vvae needs at least SSE4.1; this CPU (", f.model, ") lacks it");
  const char* env = std::getenv("VVAE_MAX_ISA");
  if (env == nullptr || *env == '\0') return {best, ""};
  const Isa cap = parse_cap(env);
  if (cap > best)
    fail("VVAE_MAX_ISA=", env, " is above what this CPU (", f.model, ") supports: ", isa_name(best),
         "; a cap can only lower the level");
  Level level{cap, ""};
  if (cap < best)
    level.cap_note = std::string("VVAE_MAX_ISA=") + env + " (the CPU has " + isa_name(best) + ")";
  return level;
}

const Level& level() {
  static const Level l = resolve_level();
  return l;
}

}  // namespace

const CpuFeatures& detected_cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

Isa cpu_isa() {
  return level().isa;
}

bool cpu_can_bf16() {
  return cpu_isa() == Isa::kAvx512 && detected_cpu_features().avx512_bf16;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kSse41:
      break;
  }
  return "sse41";
}

std::string isa_cap_note() {
  return level().cap_note;
}

std::vector<std::string> cpu_report() {
  const CpuFeatures& f = detected_cpu_features();
  std::string features;
  auto add = [&](bool has, const char* name) {
    if (!has) return;
    if (!features.empty()) features += ' ';
    features += name;
  };
  add(f.sse41, "sse4.1");
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512, "avx512(f,bw,vl,dq)");
  add(f.avx512_bf16, "avx512_bf16");
  std::vector<std::string> lines = {f.model, "features " + features};
  std::string isa = std::string("kernels use ") + isa_name(cpu_isa());
  if (!isa_cap_note().empty()) isa += ", capped by " + isa_cap_note();
  lines.push_back(isa);
  return lines;
}

}  // namespace vvae
