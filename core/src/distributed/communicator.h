// The engine's side of data parallelism: one process group (c10d Gloo) and the few collectives
// the step needs. Every rank calls them in the same order. Private to core/.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "unipool/distributed.h"
#include "unipool/stats.h"

namespace unipool {

class Communicator {
 public:
  // Rendezvous through a TCPStore at master_addr:master_port (rank 0 hosts it), then a Gloo
  // group. Throws DistributedSetupError with a message a user can act on.
  explicit Communicator(const DistributedConfig& config);
  ~Communicator();

  int rank() const { return config_.rank; }
  int world_size() const { return config_.world_size; }

  // Sums in place over the ranks; throws PeerFailure naming the rank that stopped.
  // start_sum returns at once (the group's own threads do the work, so it overlaps what this
  // thread does next); wait_started waits for every sum started since the last wait. Every
  // rank must start the same sums in the same order.
  void start_sum(at::Tensor flat);
  void wait_started();
  void sum(at::Tensor& t);          // one small tensor (counts, losses)
  void sum(RoutingCounts& counts);  // every field of a window's statistics
  // Marks this rank's progress in the store, for naming a rank that stops.
  void heartbeat(int64_t step);
  double seconds_in_collectives() const { return seconds_; }

 private:
  [[noreturn]] void fail(const std::exception& e);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  DistributedConfig config_;
  double seconds_ = 0;
};

}  // namespace unipool
