// Functions that CPU and CUDA code share (the dropout mask, quant codes): marked for both compilers
// when nvcc reads them, plain inline functions otherwise.
#pragma once

#if defined(__CUDACC__)
#define TK_HOST_DEVICE __host__ __device__
#else
#define TK_HOST_DEVICE
#endif
