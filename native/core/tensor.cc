#include "tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "error.h"

namespace tk {

Storage::Storage(size_t bytes) : bytes_(bytes) {
  // aligned_alloc needs a size that is a multiple of the alignment; never zero.
  size_t padded = (bytes + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
  if (padded == 0) padded = kTensorAlignment;
  data_ = std::aligned_alloc(kTensorAlignment, padded);
  if (!data_) fail(ErrorCode::OutOfMemory, "could not allocate " + std::to_string(bytes) + " bytes for a tensor");
  std::memset(data_, 0, padded);
}

Storage::~Storage() { std::free(data_); }

int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t d = shape[i];
    check_arg(d >= 0, "Expected non-negative dimension at shape[" + std::to_string(i) + "] but received " +
                          std::to_string(d));
    check_arg(d == 0 || n <= std::numeric_limits<int64_t>::max() / 16 / d,
              "Expected a shape whose byte size fits in 64 bits");
    n *= d;
  }
  return n;
}

Tensor Tensor::zeros(Dtype dtype, std::vector<int64_t> shape) {
  Tensor t;
  t.dtype = dtype;
  int64_t n = shape_numel(shape);
  t.shape = std::move(shape);
  t.storage = std::make_shared<Storage>(static_cast<size_t>(n) * dtype_size(dtype));
  return t;
}

int64_t Tensor::numel() const { return shape_numel(shape); }

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace tk
