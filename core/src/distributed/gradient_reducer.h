// Data parallelism's gradient average, overlapped with backward. Private to core/.
//
// Parameters go into buckets in the order backward finishes them (the reverse of their order
// in the store: lm_head first, the embedding last). A hook on each leaf's gradient accumulator
// counts the bucket down, and the bucket's sum over ranks starts the moment its last gradient
// is in (and the buckets before it have started: collectives pair up by their order on each
// rank), while backward goes on with the layers below. The shared pool is the exception: every
// layer adds to its one gradient, which is complete only when backward ends, so its buckets
// start then (it is most of the bytes: ~86% in the default preset).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "model/parameters.h"
#include "distributed/communicator.h"

namespace torch::autograd {
struct Node;
}

namespace unipool {

class GradientReducer {
 public:
  // `late`: (params.size()) true for the parameters whose gradient is complete only at the end
  // of backward (the pool). Hooks the other parameters' gradient accumulators.
  GradientReducer(Communicator& comm, ParamStore& params, const std::vector<bool>& late,
                  int64_t bucket_bytes = kDefaultBucketBytes);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Whether the store still holds the tensors this reducer hooked (a device move or a pool
  // resize replaces them: build a new reducer then).
  bool hooks(const ParamStore& params) const;
  // Before loss.backward(): every bucket waits for its gradients again.
  void begin_step();
  // After backward: starts the buckets not started yet, waits for every sum, and leaves each
  // gradient as the mean over ranks (the communicator's clock counts the waiting).
  void finish();

  static constexpr int64_t kDefaultBucketBytes = 256 << 10;  // about one layer of `default`

  size_t buckets() const { return buckets_.size(); }
  // Buckets of the last step whose sum started while backward was still running.
  size_t started_during_backward() const { return started_early_; }

 private:
  struct Bucket {
    std::vector<size_t> params;
    int pending = 0;
    at::Tensor flat;  // (sum of numel) the bucket's gradients while they are summed
  };
  void gradient_ready(size_t param);
  void start(Bucket& bucket);

  Communicator& comm_;
  ParamStore& params_;
  std::vector<Bucket> buckets_;  // in start order
  size_t next_ = 0;              // the first bucket not started this step
  size_t started_early_ = 0;
  std::vector<int> bucket_of_;        // (params) bucket index
  std::vector<const void*> tensors_;  // (params) the TensorImpl each hook belongs to
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // kept alive
  std::vector<uintptr_t> hook_keys_;
};

}  // namespace unipool
