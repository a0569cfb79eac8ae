#include "backend.h"

#include <algorithm>

#include "../core/error.h"

namespace tk {

Buffer::Buffer(const ExecContext& x, int64_t n, bool zero) : b_(x.backend), n_(n) {
  if (n <= 0) {
    n_ = 0;
    return;
  }
  p_ = static_cast<float*>(b_->alloc(static_cast<size_t>(n) * sizeof(float)));
  if (zero) b_->fill_zero(p_, static_cast<size_t>(n) * sizeof(float));
}

void Buffer::reset() noexcept {
  if (p_) b_->free(p_, static_cast<size_t>(n_) * sizeof(float));
  p_ = nullptr, n_ = 0;
}

Buffer copy_of(const ExecContext& x, const Buffer& src) {
  Buffer b(x, src.size());
  // Through the op table rather than Backend::copy: the CPU's copy_block splits across the pool
  // (a step copies each layer's input twice; one thread alone was a measurable part of it).
  if (src.size()) x.op->copy_block(x, b.data(), src.size(), src.data(), src.size(), 1, src.size());
  return b;
}

FlatVector::FlatVector(const FlatVector& o) : b_(o.b_) {
  resize(o.n_);
  if (n_) b_->copy(p_, o.p_, static_cast<size_t>(n_) * sizeof(float));
}

FlatVector& FlatVector::operator=(const FlatVector& o) {
  if (this != &o) FlatVector(o).swap(*this);
  return *this;
}

FlatVector::~FlatVector() {
  if (p_) b_->free(p_, static_cast<size_t>(cap_) * sizeof(float));
}

void FlatVector::resize(int64_t n) {
  if (n <= cap_) {
    if (n > n_) b_->fill_zero(p_ + n_, static_cast<size_t>(n - n_) * sizeof(float));
    n_ = n;
    return;
  }
  check_arg(b_ != nullptr, "Expected a backend for the trainable state");
  const int64_t cap = std::max(n, cap_ * 2);
  float* p = static_cast<float*>(b_->alloc(static_cast<size_t>(cap) * sizeof(float)));
  if (n_) b_->copy(p, p_, static_cast<size_t>(n_) * sizeof(float));
  b_->fill_zero(p + n_, static_cast<size_t>(n - n_) * sizeof(float));
  if (p_) b_->free(p_, static_cast<size_t>(cap_) * sizeof(float));
  p_ = p, n_ = n, cap_ = cap;
}

void FlatVector::reserve(int64_t n) {
  if (n <= cap_) return;
  const int64_t size = n_;
  resize(n);  // allocates and zero-fills [size, n)
  n_ = size;
}

void FlatVector::fill_zero() {
  if (n_) b_->fill_zero(p_, static_cast<size_t>(n_) * sizeof(float));
}

void FlatVector::read(int64_t offset, int64_t n, float* host) const {
  check_arg(offset >= 0 && n >= 0 && offset + n <= n_, "Expected a range inside the trainable state");
  if (n) b_->copy_to_host(host, p_ + offset, static_cast<size_t>(n) * sizeof(float));
}

void FlatVector::write(int64_t offset, int64_t n, const float* host) {
  check_arg(offset >= 0 && n >= 0 && offset + n <= n_, "Expected a range inside the trainable state");
  if (n) b_->copy_to_device(p_ + offset, host, static_cast<size_t>(n) * sizeof(float));
}

}  // namespace tk
