// The in-process implementations of Comm: world size 1, and a group of threads that stand in for
// ranks (each collective is a rendezvous: every rank posts its buffers, each computes its own
// result from the others', and a second rendezvous keeps a buffer alive until all have read it).
// Sums run in rank order, so a result is the same on every rank and in every run.
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "../core/error.h"
#include "comm.h"

namespace tk {
namespace {

class SingleProcess final : public Comm {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  void all_reduce_sum(void*, int64_t, CommType) override {}
  void reduce_scatter_sum(const void* in, void* out, int64_t count, CommType t) override {
    if (in != out) std::memmove(out, in, static_cast<size_t>(count * comm_type_size(t)));
  }
  void all_gather(const void* in, void* out, int64_t count, CommType t) override {
    if (in != out) std::memmove(out, in, static_cast<size_t>(count * comm_type_size(t)));
  }
  void reduce_sum(void*, int64_t, CommType, int root) override {
    check_arg(root == 0, "Expected reduce root 0 in a single-process run");
  }
  void broadcast(void*, int64_t, CommType, int root) override {
    check_arg(root == 0, "Expected broadcast root 0 in a single-process run");
  }
  void barrier() override {}
};

// dst[i] += src[i] for `count` values of type t.
void add_into(void* dst, const void* src, int64_t count, CommType t) {
  if (t == CommType::F32) {
    float* d = static_cast<float*>(dst);
    const float* s = static_cast<const float*>(src);
    for (int64_t i = 0; i < count; ++i) d[i] += s[i];
  } else {
    double* d = static_cast<double*>(dst);
    const double* s = static_cast<const double*>(src);
    for (int64_t i = 0; i < count; ++i) d[i] += s[i];
  }
}

}  // namespace

Comm& single_process_comm() {
  static SingleProcess comm;
  return comm;
}

struct LocalGroup::Shared {
  int world;
  std::mutex mutex;
  std::condition_variable cv;
  int arrived = 0;
  uint64_t generation = 0;
  std::vector<const void*> in;
  std::vector<void*> out;

  void rendezvous() {
    std::unique_lock<std::mutex> lock(mutex);
    const uint64_t gen = generation;
    if (++arrived == world) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return;
    }
    cv.wait(lock, [&] { return generation != gen; });
  }

  class Member final : public Comm {
   public:
    Member(Shared& s, int r) : s_(s), rank_(r) {}
    int rank() const override { return rank_; }
    int world() const override { return s_.world; }
    void all_reduce_sum(void* data, int64_t count, CommType t) override {
      const size_t bytes = static_cast<size_t>(count * comm_type_size(t));
      std::vector<char> sum(bytes);
      post(data, data);
      std::memcpy(sum.data(), s_.in[0], bytes);
      for (int q = 1; q < s_.world; ++q) add_into(sum.data(), s_.in[q], count, t);
      s_.rendezvous();  // all have read every rank's data before anyone overwrites its own
      std::memcpy(data, sum.data(), bytes);
    }
    void reduce_scatter_sum(const void* in, void* out, int64_t count, CommType t) override {
      const size_t bytes = static_cast<size_t>(count * comm_type_size(t));
      std::vector<char> sum(bytes);
      post(in, out);
      auto block = [&](int q) { return static_cast<const char*>(s_.in[q]) + rank_ * bytes; };
      std::memcpy(sum.data(), block(0), bytes);
      for (int q = 1; q < s_.world; ++q) add_into(sum.data(), block(q), count, t);
      s_.rendezvous();
      std::memcpy(out, sum.data(), bytes);
    }
    void all_gather(const void* in, void* out, int64_t count, CommType t) override {
      const size_t bytes = static_cast<size_t>(count * comm_type_size(t));
      post(in, out);
      // Each rank writes only the other ranks' blocks of its own output; an in-place input (its
      // own block) is read by the others, never written.
      for (int q = 0; q < s_.world; ++q)
        if (static_cast<char*>(out) + q * bytes != s_.in[q]) std::memmove(static_cast<char*>(out) + q * bytes, s_.in[q], bytes);
      s_.rendezvous();
    }
    void reduce_sum(void* data, int64_t count, CommType t, int root) override {
      check_arg(root >= 0 && root < s_.world, "Expected a reduce root in [0, " + std::to_string(s_.world) + ")");
      const size_t bytes = static_cast<size_t>(count * comm_type_size(t));
      std::vector<char> sum(rank_ == root ? bytes : 0);
      post(data, data);
      if (rank_ == root) {
        std::memcpy(sum.data(), s_.in[0], bytes);
        for (int q = 1; q < s_.world; ++q) add_into(sum.data(), s_.in[q], count, t);
      }
      s_.rendezvous();
      if (rank_ == root) std::memcpy(data, sum.data(), bytes);
    }
    void broadcast(void* data, int64_t count, CommType t, int root) override {
      check_arg(root >= 0 && root < s_.world, "Expected a broadcast root in [0, " + std::to_string(s_.world) + ")");
      post(data, data);
      if (rank_ != root) std::memcpy(data, s_.in[root], static_cast<size_t>(count * comm_type_size(t)));
      s_.rendezvous();
    }
    void barrier() override { s_.rendezvous(); }

   private:
    // Publishes this rank's buffers, and returns once every rank has published its own.
    void post(const void* in, void* out) {
      {
        std::lock_guard<std::mutex> lock(s_.mutex);
        s_.in[rank_] = in;
        s_.out[rank_] = out;
      }
      s_.rendezvous();
    }
    Shared& s_;
    int rank_;
  };
  std::vector<std::unique_ptr<Member>> members;
};

LocalGroup::LocalGroup(int world) : shared_(std::make_unique<Shared>()) {
  check_arg(world >= 1 && world <= 1024, "Expected a world size in [1, 1024] but received " + std::to_string(world));
  shared_->world = world;
  shared_->in.assign(static_cast<size_t>(world), nullptr);
  shared_->out.assign(static_cast<size_t>(world), nullptr);
  for (int r = 0; r < world; ++r) shared_->members.push_back(std::make_unique<Shared::Member>(*shared_, r));
}

LocalGroup::~LocalGroup() = default;

Comm& LocalGroup::rank(int r) {
  check_arg(r >= 0 && r < shared_->world, "Expected a rank in [0, " + std::to_string(shared_->world) + ")");
  return *shared_->members[static_cast<size_t>(r)];
}

int LocalGroup::world() const { return shared_->world; }

void LocalGroup::run(const std::function<void(Comm&)>& fn) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(shared_->world));
  std::vector<std::thread> threads;
  auto body = [&](int r) {
    try {
      fn(rank(r));
    } catch (...) {
      errors[static_cast<size_t>(r)] = std::current_exception();
    }
  };
  for (int r = 1; r < shared_->world; ++r) threads.emplace_back(body, r);
  body(0);
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace tk
