// The vector walk of whole Q4_K, Q5_K and Q6_K super-blocks, written once for every ISA: V holds
// one ISA's integer and float lanes (kquant_avx2.cc, kquant_avx512.cc), and the including file
// defines TK_KQUANT_TARGET (its target attribute, with fp-contract off: a fused dj·q − mj would
// round once where gguf_quant.cc's scalar code and gguf-py round twice). The products are the
// scalar decoder's, in its order, so every ISA gives the same bits.
#pragma once
#include <cstdint>

#include "../../../core/float16.h"
#include "../../../core/quant_blocks.h"
#include "../kquant_decode.h"

namespace tk {
namespace cpu {
namespace {

// Q4_K / Q5_K: element 32j + l = (d·sc_j)·q − dmin·m_j, q = nibble j % 2 of qs[32(j / 2) + l]
// (Q5_K: | bit j of qh[l] << 4).
template <class V, bool kFive>
TK_KQUANT_TARGET void decode_q45_k(const uint8_t* block, float* out) {
  const auto* b4 = reinterpret_cast<const BlockQ4_K*>(block);
  const auto* b5 = reinterpret_cast<const BlockQ5_K*>(block);
  const float d = f16_to_float(kFive ? b5->d : b4->d), dmin = f16_to_float(kFive ? b5->dmin : b4->dmin);
  const uint8_t* scales = kFive ? b5->scales : b4->scales;
  const uint8_t* qs = kFive ? b5->qs : b4->qs;
  const auto nibble = V::splat(0x0f), one = V::splat(1);
  for (int j = 0; j < 8; ++j) {
    float sc, m;
    kquant_scale_min(scales, j, sc, m);
    const auto dj = V::splat(d * sc), mj = V::splat(dmin * m);
    const int c = j / 2, n = j % 2;
    for (int l = 0; l < 32; l += V::kLanes) {
      auto q = V::and_(V::srl(V::bytes(qs + 32 * c + l), 4 * n), nibble);
      if (kFive) q = V::or_(q, V::sll(V::and_(V::srl(V::bytes(b5->qh + l), j), one), 4));
      V::store(out + 32 * j + l, V::sub(V::mul(dj, V::to_float(q)), mj));
    }
  }
}

// Q6_K: in each half of 128, byte l of ql and qh gives elements l, l + 32, l + 64, l + 96 (as
// gguf_quant.cc's decoder), each (d·scale)·(q − 32).
template <class V>
TK_KQUANT_TARGET void decode_q6_k(const uint8_t* block, float* out) {
  const auto* b = reinterpret_cast<const BlockQ6_K*>(block);
  const float d = f16_to_float(b->d);
  const auto low = V::splat(0x0f), two = V::splat(3), bias = V::splat(32);
  for (int h = 0; h < 2; ++h) {
    const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
    const int8_t* sc = b->scales + 8 * h;
    float* y = out + 128 * h;
    for (int l = 0; l < 32; l += V::kLanes) {
      const int is = l / 16;
      const auto a = V::bytes(ql + l), c = V::bytes(ql + l + 32), hi = V::bytes(qh + l);
      const decltype(a) q[4] = {
          V::or_(V::and_(a, low), V::sll(V::and_(hi, two), 4)),
          V::or_(V::and_(c, low), V::sll(V::and_(V::srl(hi, 2), two), 4)),
          V::or_(V::srl(a, 4), V::sll(V::and_(V::srl(hi, 4), two), 4)),
          V::or_(V::srl(c, 4), V::sll(V::and_(V::srl(hi, 6), two), 4)),
      };
      for (int k = 0; k < 4; ++k)
        V::store(y + l + 32 * k, V::mul(V::splat(d * static_cast<float>(sc[is + 2 * k])), V::to_float(V::sub_int(q[k], bias))));
    }
  }
}

// count whole super-blocks of `format` to out (count · 256 values); other formats: nothing.
template <class V>
TK_KQUANT_TARGET void decode_kquant_blocks(WeightFormat format, const void* blocks, int64_t count, float* out) {
  const auto* p = static_cast<const uint8_t*>(blocks);
  switch (format) {
    case WeightFormat::Q4_K:
      for (int64_t i = 0; i < count; ++i) decode_q45_k<V, false>(p + i * sizeof(BlockQ4_K), out + i * kGgufSuperBlock);
      return;
    case WeightFormat::Q5_K:
      for (int64_t i = 0; i < count; ++i) decode_q45_k<V, true>(p + i * sizeof(BlockQ5_K), out + i * kGgufSuperBlock);
      return;
    case WeightFormat::Q6_K:
      for (int64_t i = 0; i < count; ++i) decode_q6_k<V>(p + i * sizeof(BlockQ6_K), out + i * kGgufSuperBlock);
      return;
    default: return;
  }
}

}  // namespace
}  // namespace cpu
}  // namespace tk
