// Data-parallel training over processes (LibTorch's c10d: a TCPStore for the rendezvous,
// ProcessGroupGloo between CPU processes). Plain C++: the CLI reads the launcher's environment
// into a DistributedConfig and hands it to Engine::set_distributed().
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace unipool {

struct DistributedConfig {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // A collective or the rendezvous that takes longer fails with a message naming the rank
  // that stopped (a dead peer is noticed at once; a hung one after this bound).
  double timeout_s = 60.0;
};

// A launcher environment or a rendezvous that cannot work (bad MASTER_ADDR, port in use,
// world-size mismatch, malformed variables): the CLI exits 2 with the message.
class DistributedSetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// A peer that died or hung during training: the CLI exits 1 with the message.
class PeerFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT as torchrun, Slurm wrappers and
// Kubernetes operators set them; nullopt when WORLD_SIZE is unset (a single process).
// Throws DistributedSetupError for missing or malformed values.
std::optional<DistributedConfig> distributed_from_env();

}  // namespace unipool
