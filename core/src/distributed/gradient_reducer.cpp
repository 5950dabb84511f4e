#include "distributed/gradient_reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

namespace unipool {

GradientReducer::GradientReducer(Communicator& comm, ParamStore& params,
                                 const std::vector<bool>& late, int64_t bucket_bytes)
    : comm_(comm), params_(params) {
  const size_t n = params.size();
  bucket_of_.assign(n, -1);
  tensors_.resize(n);
  // Early buckets: reverse store order, cut at bucket_bytes. Late ones after them.
  auto fill = [&](bool want_late) {
    int64_t bytes = 0;
    bool fresh = true;
    for (size_t k = n; k-- > 0;) {
      if (late[k] != want_late) continue;
      const int64_t b = int64_t(params.tensor(k).nbytes());
      if (fresh || (bytes > 0 && bytes + b > bucket_bytes)) {
        buckets_.emplace_back();
        bytes = 0;
        fresh = false;
      }
      buckets_.back().params.push_back(k);
      bucket_of_[k] = int(buckets_.size() - 1);
      bytes += b;
    }
  };
  fill(false);
  fill(true);
  for (size_t k = 0; k < n; ++k) {
    const at::Tensor& t = params.tensor(k);
    tensors_[k] = t.unsafeGetTensorImpl();
    if (late[k]) continue;
    // Runs after the accumulator has added this step's gradient into .grad.
    auto accumulator = torch::autograd::impl::grad_accumulator(t);
    hook_keys_.push_back(
        accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
            [this, k](const torch::autograd::variable_list& outputs,
                      const torch::autograd::variable_list&) {
              gradient_ready(k);
              return outputs;
            })));
    accumulators_.push_back(std::move(accumulator));
  }
}

GradientReducer::~GradientReducer() {
  for (size_t i = 0; i < accumulators_.size(); ++i) accumulators_[i]->del_post_hook(hook_keys_[i]);
}

bool GradientReducer::hooks(const ParamStore& params) const {
  if (params.size() != tensors_.size()) return false;
  for (size_t k = 0; k < tensors_.size(); ++k)
    if (params.tensor(k).unsafeGetTensorImpl() != tensors_[k]) return false;
  return true;
}

void GradientReducer::begin_step() {
  next_ = 0;
  for (Bucket& b : buckets_) {
    b.pending = int(b.params.size());
    b.flat = at::Tensor();
  }
}

void GradientReducer::gradient_ready(size_t param) {
  --buckets_[size_t(bucket_of_[param])].pending;
  // Started in bucket order only: collectives pair up by their order on each rank, so a
  // bucket that completes early waits for the ones before it.
  while (next_ < buckets_.size() && buckets_[next_].pending == 0) start(buckets_[next_++]);
}

void GradientReducer::start(Bucket& b) {
  std::vector<at::Tensor> parts;
  // A parameter without a gradient (a router of a layer routed at random) has none on every
  // rank: the ranks' buckets still agree.
  for (size_t k : b.params)
    if (params_.tensor(k).grad().defined()) parts.push_back(params_.tensor(k).grad().reshape({-1}));
  if (parts.empty()) return;
  b.flat = at::cat(parts);
  comm_.start_sum(b.flat);
}

void GradientReducer::finish() {
  // In bucket order, the same on every rank: the late buckets, and any bucket a missing
  // gradient kept from starting.
  started_early_ = next_;
  for (; next_ < buckets_.size(); ++next_) start(buckets_[next_]);
  comm_.wait_started();
  const double world = double(comm_.world_size());
  for (Bucket& b : buckets_) {
    if (!b.flat.defined()) continue;
    b.flat.div_(world);
    int64_t offset = 0;
    for (size_t k : b.params) {
      at::Tensor& g = params_.tensor(k).mutable_grad();
      if (!g.defined()) continue;
      g.copy_(b.flat.narrow(0, offset, g.numel()).view(g.sizes()));
      offset += g.numel();
    }
    b.flat = at::Tensor();
  }
}

}  // namespace unipool
