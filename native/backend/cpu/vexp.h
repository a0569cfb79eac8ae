// exp over arrays, vectorized where the CPU allows. Why: the training step takes ~150M
// exponentials (softmax of attention scores, the loss over the vocabulary, SiLU in every MLP), and
// scalar expf made those passes a fifth of a step. The AVX-512 and AVX2 paths use Cephes' expf:
// range reduction by ln 2 (split in two parts), a degree-6 polynomial, 2^n applied with vscalefps
// (AVX2: built from exponent bits, in two halves for the denormal range) — within 4 ulp of exp
// over the range tested (test/ops.test.ts); results depend on the ISA but not on threads.
#pragma once
#include <cstdint>

#include "cpu_features.h"

namespace tk {

// y[i] = exp(x[i] − shift) for i in [0, n); returns Σ y[i] accumulated in fp64. y may alias x.
double exp_shifted_sum(const float* x, float shift, int64_t n, float* y, Isa isa);

// max(x[0..n)) (−inf for n = 0; NaN inputs are not propagated — a NaN loss is caught later from
// the sum), the shift a softmax subtracts before exp.
float max_of(const float* x, int64_t n, Isa isa);

// x[i] *= k: the softmax's normalization.
void scale_in_place(float* x, int64_t n, float k, Isa isa);

// The backward of a softmax row p given dy = dL/dp, in place: dy[i] = scale · p[i] · (dy[i] − d),
// d = Σ_j p[j]·dy[j] over the row. row_dot: d when the caller has it (attention's tiles of a row's
// keys take it as dO·O); null: [0, n) is the whole row and d is summed here.
void softmax_backward_row(const float* p, float* dy, int64_t n, float scale, const float* row_dot, Isa isa);

// y[i] = 1 / (1 + exp(−x[i])). y may alias x.
void sigmoid(const float* x, int64_t n, float* y, Isa isa);

}  // namespace tk
