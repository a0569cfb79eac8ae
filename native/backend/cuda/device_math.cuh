// Device helpers the op files share: reductions, bf16 rounding, the column-sum pass.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

namespace tk {
namespace cuda {

constexpr int kWarp = 32;

template <class T>
__device__ inline T warp_sum(T v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ inline float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// A reduction over the block (blockDim.x a multiple of 32, at most 1024) in a fixed order, so the
// same on every run; every thread gets it. `shared` holds 32 values.
template <class T, class Warp>
__device__ inline T block_reduce(T v, T* shared, T identity, Warp warp_reduce) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  v = warp_reduce(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  return warp_reduce(lane < warps ? shared[lane] : identity);
}

template <class T>
__device__ inline T block_sum(T v, T* shared) {
  return block_reduce(v, shared, T(0), [](T x) { return warp_sum(x); });
}

__device__ inline float block_max(float v, float* shared) {
  return block_reduce(v, shared, -INFINITY, [](float x) { return warp_max(x); });
}

// Round to the nearest bf16, ties to even (as the CPU's float_to_bf16), back in fp32.
__device__ inline float round_bf16(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

}  // namespace cuda
}  // namespace tk
