#include "weight_store.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "../core/error.h"
#include "../core/float16.h"
#include "../core/quant_blocks.h"
#include "../backend/cpu/kernels.h"
#include "nf4.h"

namespace tk {

WeightView WeightStore::view() const {
  WeightView v;
  v.format = format;
  v.rows = rows;
  v.cols = cols;
  v.data = data.raw();
  v.ld = cols;
  v.absmax = absmax.storage ? absmax.data<float>() : nullptr;
  v.blocksize = blocksize;
  return v;
}

bool parse_weight_format(const std::string& name, WeightFormat* out) {
  for (WeightFormat f : {WeightFormat::F32, WeightFormat::BF16, WeightFormat::F16, WeightFormat::NF4, WeightFormat::Q4_0,
                         WeightFormat::Q4_1, WeightFormat::Q8_0, WeightFormat::Q2_K, WeightFormat::Q3_K, WeightFormat::Q4_K,
                         WeightFormat::Q5_K, WeightFormat::Q6_K, WeightFormat::Q8_K, WeightFormat::Q5_0, WeightFormat::Q5_1,
                         WeightFormat::IQ4_NL, WeightFormat::IQ4_XS}) {
    if (name == weight_format_name(f)) {
      *out = f;
      return true;
    }
  }
  return false;
}

namespace {

void check_shape(const WeightStore& s) {
  check_arg(s.rows >= 0 && s.cols >= 0, "Expected a non-negative weight shape");
  if (s.format == WeightFormat::NF4)
    check_arg(valid_nf4_blocksize(s.blocksize), "Expected blocksize a power of two in [32, 4096] but received " +
                                                    std::to_string(s.blocksize));
  if (is_gguf(s.format)) {
    const int64_t per = gguf_block_elements(gguf_type(s.format));
    check_arg(s.cols % per == 0, "Expected a column count divisible by " + std::to_string(per) + " for " +
                                     weight_format_name(s.format) + " but received " + std::to_string(s.cols));
  }
}

void expect_part(const Tensor& t, Dtype dtype, int64_t numel, const char* part, WeightFormat f) {
  check_arg(t.storage != nullptr, std::string("Expected part ") + part + " for " + weight_format_name(f) + " weights");
  check_arg(t.dtype == dtype && t.numel() == numel,
            std::string("Expected ") + part + " to be " + dtype_name(dtype) + " with " + std::to_string(numel) +
                " elements but received " + dtype_name(t.dtype) + " " + t.shape_string());
}

}  // namespace

WeightStore quantize_weights(const float* w, int64_t rows, int64_t cols, WeightFormat format, int64_t blocksize,
                             bool double_quant) {
  WeightStore s;
  s.format = format;
  s.rows = rows;
  s.cols = cols;
  s.blocksize = blocksize;
  s.double_quant = format == WeightFormat::NF4 && double_quant;
  check_shape(s);
  const int64_t n = rows * cols;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(w[i]))
      fail(ErrorCode::InvalidArgument, std::string("Expected finite weights but element ") + std::to_string(i) +
                                           " (row " + std::to_string(i / std::max<int64_t>(cols, 1)) + ") is " +
                                           (std::isnan(w[i]) ? "NaN" : "Inf"));
  switch (format) {
    case WeightFormat::F32:
      s.data = Tensor::zeros(Dtype::F32, {rows, cols});
      std::copy(w, w + n, s.data.data<float>());
      break;
    case WeightFormat::BF16:
    case WeightFormat::F16: {
      const bool bf = format == WeightFormat::BF16;
      s.data = Tensor::zeros(bf ? Dtype::BF16 : Dtype::F16, {rows, cols});
      uint16_t* out = s.data.data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = bf ? float_to_bf16(w[i]) : float_to_f16(w[i]);
      break;
    }
    case WeightFormat::NF4: {
      const int64_t blocks = nf4_blocks(n, blocksize);
      s.data = Tensor::zeros(Dtype::U8, {(n + 1) / 2});
      s.absmax = Tensor::zeros(Dtype::F32, {blocks});
      Nf4Quantized q{s.data.data<uint8_t>(), s.absmax.data<float>(), nullptr, nullptr, &s.offset};
      if (s.double_quant) {
        s.qabsmax = Tensor::zeros(Dtype::U8, {blocks});
        s.absmax2 = Tensor::zeros(Dtype::F32, {(blocks + kNf4DoubleQuantBlock - 1) / kNf4DoubleQuantBlock});
        q.qabsmax = s.qabsmax.data<uint8_t>();
        q.absmax2 = s.absmax2.data<float>();
      }
      nf4_quantize(w, n, blocksize, s.double_quant, q);
      // Kernels use the absmax a loader would recover from the stored statistics.
      if (s.double_quant) nf4_resolve_absmax(q.qabsmax, q.absmax2, s.offset, blocks, s.absmax.data<float>());
      break;
    }
    default: {  // GGUF blocks (gguf_quantize refuses the K-quants)
      const GgufType t = gguf_type(format);
      s.data = Tensor::zeros(Dtype::U8, {n / kGgufBlock * gguf_block_bytes(t)});
      gguf_quantize(t, w, n, s.data.raw());
      break;
    }
  }
  return s;
}

void validate_weights(WeightStore& s) {
  check_shape(s);
  const int64_t n = s.rows * s.cols;
  switch (s.format) {
    case WeightFormat::F32: return expect_part(s.data, Dtype::F32, n, "data", s.format);
    case WeightFormat::BF16: return expect_part(s.data, Dtype::BF16, n, "data", s.format);
    case WeightFormat::F16: return expect_part(s.data, Dtype::F16, n, "data", s.format);
    case WeightFormat::NF4: {
      const int64_t blocks = nf4_blocks(n, s.blocksize);
      expect_part(s.data, Dtype::U8, (n + 1) / 2, "codes", s.format);
      if (s.double_quant) {
        expect_part(s.qabsmax, Dtype::U8, blocks, "qabsmax", s.format);
        expect_part(s.absmax2, Dtype::F32, (blocks + kNf4DoubleQuantBlock - 1) / kNf4DoubleQuantBlock, "absmax2",
                    s.format);
        check_arg(std::isfinite(s.offset), "Expected a finite offset for double-quantized NF4 weights");
        s.absmax = Tensor::zeros(Dtype::F32, {blocks});
        nf4_resolve_absmax(s.qabsmax.data<uint8_t>(), s.absmax2.data<float>(), s.offset, blocks,
                           s.absmax.data<float>());
      } else {
        expect_part(s.absmax, Dtype::F32, blocks, "absmax", s.format);
      }
      const float* a = s.absmax.data<float>();
      for (int64_t b = 0; b < blocks; ++b)
        check_arg(std::isfinite(a[b]), "Expected finite absmax but block " + std::to_string(b) + " is not");
      return;
    }
    default: {
      const GgufType t = gguf_type(s.format);
      return expect_part(s.data, Dtype::U8, n / gguf_block_elements(t) * gguf_block_bytes(t), "blocks", s.format);
    }
  }
}

void dequantize_weights(const WeightStore& s, float* out, ThreadPool& pool) {
  const WeightView v = s.view();
  const int tasks = static_cast<int>(std::min<int64_t>(pool.size(), std::max<int64_t>(s.rows, 1)));
  pool.run(tasks, [&](int t) {
    for (int64_t r = s.rows * t / tasks; r < s.rows * (t + 1) / tasks; ++r) cpu::decode_weights(v, r, 0, s.cols, out + r * s.cols);
  });
}

}  // namespace tk
