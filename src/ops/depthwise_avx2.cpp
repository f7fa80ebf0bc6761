// The depthwise kernel built for avx2 (flags set in CMakeLists.txt).
#define VVAE_DEPTHWISE_ISA kernels_avx2
#include "ops/depthwise_kernels.inl"
