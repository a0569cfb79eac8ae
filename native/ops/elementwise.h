// The small passes between a step's big ops, so that model code never loops over an activation:
//   bias_forward   y[r] += bias            (every row of y [rows, dim])
//   bias_backward  db += Σ_r dy[r]         (each column summed in row order)
//   add            a += b
//   scale          a *= s                  (Gemma's embedding scale √dim and its gradient)
//   softcap        a = cap·tanh(a / cap)   (Gemma 2's final-logit soft-capping)
//   softcap_backward dy *= 1 − (y / cap)²  (y the capped values: tanh² from them, nothing else kept)
//   copy_block     dst[r, 0:cols] = src[r, 0:cols] with row strides ldd, lds (GPT-2's fused qkv
//                  rows split into q, k and v, and joined back in the backward)
// The ops: OpTable::bias_forward, bias_backward, add, scale, softcap, softcap_backward, copy_block (backend/backend.h); the CPU's in
// backend/cpu/elementwise.cc.
#pragma once
