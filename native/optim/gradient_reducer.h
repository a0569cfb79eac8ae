// ZeRO stage 2's gradient reduction, during the backward: as soon as a group's gradient (a layer,
// the output norm and head) is final for the micro-batch, its pieces are reduced to the ranks whose
// shards own them, and every other rank drops its copy (Backend::discard: the memory goes back
// until the next backward writes it). A rank then keeps, between steps, only its shard's gradient
// (the window's sum over every rank) and, during a backward, the groups not yet reduced; and the
// reduction of the layers above runs while the layers below are computed.
//
// Every rank must reduce the same pieces in the same order, whatever order its own backward
// declares groups in, or the collectives would pair wrong pieces: the pieces (the groups cut at
// shard boundaries) are reduced strictly top down, a piece only once every piece above it is
// declared; finish() declares the rest. A rank with nothing to back-propagate in a micro-batch
// still calls finish() (its contribution is zero) so that the others' reductions complete.
//
// The reductions run on a thread of this object's own, which calls the communicator (whose engine
// funnels them to its communication thread); the rank's own thread makes no collective until
// finish() returns.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../backend/backend.h"
#include "../dist/comm.h"
#include "optimizer.h"

namespace tk {

// Told as soon as a group's gradient of this step is final (model code calls it through
// StepContext::group_done; nothing listens outside ZeRO-2).
class GradientListener {
 public:
  virtual ~GradientListener() = default;
  virtual void group_done(const std::string& group) = 0;
};

struct GradientGroup {
  std::string name;
  int64_t offset = 0, length = 0;
};

class GradientReducer final : public GradientListener {
 public:
  // grads: the rank's whole gradient vector (layout.size values), summed into by the backward.
  GradientReducer(Comm& comm, const ShardLayout& layout, const std::vector<GradientGroup>& groups, float* grads, Backend& backend);
  ~GradientReducer() override;
  void group_done(const std::string& group) override;
  // Declares every group left, waits for every reduction; rethrows the first failure.
  void finish();
  // Wall time inside the reductions (on the reducer's thread: it overlaps the backward), and the
  // bytes a rank sends in them on average ((world − 1) / world of each piece, as a ring would).
  double comm_seconds() const { return seconds_; }
  double comm_bytes() const { return bytes_; }

 private:
  struct Piece {
    int64_t offset, length;
    int owner;
    bool declared = false;
  };
  void post_ready();  // under mutex_: queues the declared pieces from the top down
  void run();

  Comm& comm_;
  float* grads_;
  Backend& backend_;
  std::vector<GradientGroup> groups_;
  std::vector<Piece> pieces_;  // top down
  size_t posted_ = 0, done_ = 0;
  bool stop_ = false;
  bool finished_ = false;
  double seconds_ = 0, bytes_ = 0;
  std::exception_ptr failure_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread worker_;
};

}  // namespace tk
