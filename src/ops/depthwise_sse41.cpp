// The depthwise kernel built for sse41 (flags set in CMakeLists.txt).
#define VVAE_DEPTHWISE_ISA kernels_sse41
#include "ops/depthwise_kernels.inl"
