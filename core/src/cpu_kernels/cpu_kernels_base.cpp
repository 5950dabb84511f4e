// Baseline x86-64 (SSE2) build of the fused loops, for CPUs without AVX2.
#define UNIPOOL_ISA base
#include "cpu_kernels_impl.inc"
