// AVX2 + FMA build of the fused loops (compiled with -mavx2 -mfma; used only where the CPU has
// both).
#define UNIPOOL_ISA avx2
#include "cpu_kernels_impl.inc"
