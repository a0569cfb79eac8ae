// A dense, row-major tensor in native memory.
// Why shared storage: JS sees a tensor's bytes as an external ArrayBuffer (no copies across the
// boundary), and a native worker may still be computing on it after JS dropped its handle. Both
// hold a reference to the Storage, so the memory lives as long as either needs it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"

namespace tk {

constexpr size_t kTensorAlignment = 64;  // a cache line, and one AVX-512 vector

class Storage {
 public:
  // Zero-filled, 64-byte aligned. Throws tk::Error(OutOfMemory) on failure.
  explicit Storage(size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

struct Tensor {
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  std::shared_ptr<Storage> storage;

  static Tensor zeros(Dtype dtype, std::vector<int64_t> shape);
  int64_t numel() const;
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int rank() const { return static_cast<int>(shape.size()); }
  void* raw() const { return storage ? storage->data() : nullptr; }
  template <class T>
  T* data() const { return static_cast<T*>(raw()); }
  std::string shape_string() const;  // "[2, 3]"
};

// Element count of a shape; throws InvalidArgument on a negative or overflowing dimension.
int64_t shape_numel(const std::vector<int64_t>& shape);

}  // namespace tk
