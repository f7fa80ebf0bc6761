// Winograd transforms built for sse41 (flags set in CMakeLists.txt).
#define VVAE_WINOGRAD_ISA kernels_sse41
#include "ops/winograd_kernels.inl"
