// GEMM on the GPU (ops/gemm.h) through cuBLAS: row-major C = op(A)·op(B) is column-major
// Cᵀ = op(B)ᵀ·op(A)ᵀ, so cuBLAS gets B first and the transposes as stored. bf16 products round
// both operands to bf16 (a fp32 activation into a reused buffer, a weight decoded straight to
// bf16) and accumulate in fp32 (CUBLAS_COMPUTE_32F: tensor cores); fp32 products stay fp32.
// A compressed frozen weight (NF4, Q4_0, Q4_1, Q8_0, f16, bf16 in an fp32 product) is decoded
// whole into one reused buffer before its product: one extra pass over a matrix the GEMM reads
// anyway. Decoding inside the GEMM's tile loads instead is the measured alternative to try next
// (issue 13); this keeps cuBLAS's kernels.
#include <cuda_bf16.h>

#include <string>

#include "cuda_context.cuh"
#include "kernels.cuh"

namespace tk {
namespace cuda {
namespace {

__global__ void to_bf16(const float* src, int64_t rows, int64_t cols, int64_t ld, __nv_bfloat16* out) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n; e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[e] = __float2bfloat16_rn(src[(e / cols) * ld + e % cols]);
}

// An operand as cuBLAS reads it: stored row-major with row stride ld, transposed or not.
struct Operand {
  const void* p = nullptr;
  int64_t ld = 0;
  cudaDataType type = CUDA_R_32F;
  bool trans = false;
};

// A dense fp32 operand stored [rows, cols]: as it is, or rounded to bf16 into `slot`.
Operand dense(const ExecContext& x, CudaBackend& b, const GemmOperand& o, int64_t rows, int64_t cols, bool bf16, Slot slot) {
  if (!bf16) return {o.data, o.ld, CUDA_R_32F, o.trans};
  void* out = b.scratch(slot, static_cast<size_t>(rows * cols) * 2);
  round_to_bf16(x, o.data, rows, cols, o.ld, out);
  return {out, cols, CUDA_R_16BF, o.trans};
}

// The B operand: a dense fp32 matrix stored [rows, cols], or a weight in any placed format.
Operand b_operand(const ExecContext& x, CudaBackend& b, const GemmOperand& o, int64_t rows, int64_t cols, bool bf16, Slot slot) {
  if (!o.weights) return dense(x, b, o, rows, cols, bf16, slot);
  const WeightView& w = *o.weights;
  check_arg(w.rows == rows && w.cols == cols, "gemm: expected a weight of " + std::to_string(rows) + " x " + std::to_string(cols) +
                                                  " but received " + std::to_string(w.rows) + " x " + std::to_string(w.cols));
  if (w.format == WeightFormat::F32 && !bf16) return {w.data, w.ld, CUDA_R_32F, o.trans};
  if (w.format == WeightFormat::BF16 && bf16) return {w.data, w.ld, CUDA_R_16BF, o.trans};
  void* out = b.scratch(kDecodedB, static_cast<size_t>(rows * cols) * (bf16 ? 2 : 4));
  decode_weights(x, w, out, bf16);
  return {out, cols, bf16 ? CUDA_R_16BF : CUDA_R_32F, o.trans};
}

// C = alpha·op(A)·op(B) + beta·C, op(A) m x k, op(B) k x n.
void product(const ExecContext& x, CudaBackend& b, int64_t m, int64_t n, int64_t k, const GemmOperand& ga, const GemmOperand& gb,
             float* c, int64_t ldc, float alpha, float beta, bool bf16) {
  if (m <= 0 || n <= 0) return;
  const Operand A = dense(x, b, ga, ga.trans ? k : m, ga.trans ? m : k, bf16, kOperandA);
  const Operand B = b_operand(x, b, gb, gb.trans ? n : k, gb.trans ? k : n, bf16, kOperandB);
  const Cublas& blas = b.blas();
  const cublasStatus_t s = blas.gemm_ex(blas.handle, B.trans ? CUBLAS_OP_T : CUBLAS_OP_N, A.trans ? CUBLAS_OP_T : CUBLAS_OP_N,
                                        n, m, k, &alpha, B.p, B.type, B.ld, A.p, A.type, A.ld, &beta, c, CUDA_R_32F, ldc,
                                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS)
    fail(ErrorCode::Internal, "cublasGemmEx failed with status " + std::to_string(static_cast<int>(s)) + " (m " + std::to_string(m) +
                                  ", n " + std::to_string(n) + ", k " + std::to_string(k) + ")");
}

}  // namespace

void round_to_bf16(const ExecContext& x, const float* src, int64_t rows, int64_t cols, int64_t ld, void* out) {
  CudaBackend& b = backend_of(x);
  if (rows * cols <= 0) return;
  to_bf16<<<grid_for(rows * cols, 256), 256, 0, b.stream()>>>(src, rows, cols, ld, static_cast<__nv_bfloat16*>(out));
  TK_LAUNCHED("round to bf16");
}

void gemm(const ExecContext& x, const GemmArgs& a) {
  CudaBackend& b = backend_of(x);
  product(x, b, a.m, a.n, a.k, a.a, a.b, a.c, a.ldc, a.alpha, a.beta, a.bf16);
  // The second product adds into the first's result (C = alpha·(AB + A2B2) + beta·C).
  if (a.k2 > 0) product(x, b, a.m, a.n, a.k2, a.a2, a.b2, a.c, a.ldc, a.alpha, 1.0f, a.bf16);
}

}  // namespace cuda
}  // namespace tk
