// Winograd transforms built for avx2 (flags set in CMakeLists.txt).
#define VVAE_WINOGRAD_ISA kernels_avx2
#include "ops/winograd_kernels.inl"
