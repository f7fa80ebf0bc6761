// The depthwise kernel built for avx512 (flags set in CMakeLists.txt).
#define VVAE_DEPTHWISE_ISA kernels_avx512
#include "ops/depthwise_kernels.inl"
