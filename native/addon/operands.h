// Unwrapping matrix operands shared by the GEMM and LoRA bindings.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../ops/gemm.h"
#include "../ops/weight_store.h"

namespace tk {

// A weight operand (GEMM B, LoRA W) as kernels read it, plus whatever keeps its memory alive.
struct BOperand {
  Tensor dense;                              // f32 fast path (and the storage of bf16/f16 tensors)
  std::shared_ptr<const WeightStore> store;  // Weights objects
  std::shared_ptr<WeightView> view;          // bf16/f16 tensors and Weights
  int64_t rows = 0, cols = 0;
  // The operand for GemmArgs (pointers stay valid while this BOperand lives).
  GemmOperand operand(bool trans) const;
};

// A 2-D f32/bf16/f16 Tensor or a Weights object; `what` names the argument in errors.
BOperand b_operand(const Napi::Value& value, const char* what);

// tensors[name] as a weight matrix of shape [rows, cols] (any format), its memory kept in `keep`.
WeightView named_matrix(const Napi::Object& tensors, const std::string& name, int64_t rows, int64_t cols,
                        std::vector<BOperand>& keep);
// tensors[name] as an f32 vector of `size` elements, its memory kept in `keep`.
const float* named_vector(const Napi::Object& tensors, const std::string& name, int64_t size, std::vector<Tensor>& keep);

// Checks a non-empty 1-D i32 token tensor against the vocabulary; returns its length.
int64_t check_tokens(const Tensor& tokens, int64_t vocab);

// A 2-D f32 tensor of the given shape (rows/cols < 0: any); `what` names the argument in errors.
const Tensor& f32_matrix(const Napi::Value& value, const char* what, int64_t rows = -1, int64_t cols = -1);

}  // namespace tk
