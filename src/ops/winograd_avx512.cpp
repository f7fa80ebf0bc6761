// Winograd transforms built for avx512 (flags set in CMakeLists.txt).
#define VVAE_WINOGRAD_ISA kernels_avx512
#include "ops/winograd_kernels.inl"
