// AdamW over a ParamStore, one fused loop per tensor (exp_avg and exp_avg_sq, PyTorch's and the
// checkpoint's names for the first and second moments; bias correction; decoupled weight
// decay). Moments are keyed by parameter name, and a pool resize remaps their rows here.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "model/parameters.h"

namespace unipool {

struct AdamWSettings {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  double router_weight_decay = -1;  // the routers' weights; < 0: weight_decay
  // The decoupled decay coefficient of parameter `name` (0 for norms and router scales).
  double decay_of(const std::string& name) const;
};

class AdamW {
 public:
  // Applies one update to every parameter with a gradient. `step` counts from 1.
  void update(ParamStore& params, const AdamWSettings& s, int64_t step);
  // The same update in LibTorch ops on any device (the generic backends; model/backend.h).
  void update_generic(ParamStore& params, const AdamWSettings& s, int64_t step);
  // Moves the moments to `device` (with the parameters, when a run changes device).
  void to(const at::Device& device);
  // Moments of one parameter (created as zeros on first use).
  at::Tensor& exp_avg(const std::string& name, const at::Tensor& like);
  at::Tensor& exp_avg_sq(const std::string& name, const at::Tensor& like);
  bool has(const std::string& name) const { return exp_avg_.count(name) != 0; }
  // A checkpoint's moments, already checked against the parameter's shape.
  void set_exp_avg(const std::string& name, at::Tensor value) { exp_avg_[name] = std::move(value); }
  void set_exp_avg_sq(const std::string& name, at::Tensor value) {
    exp_avg_sq_[name] = std::move(value);
  }
  // A pool resize changed the rows of `name`: new row i is old row rows[i], and starts from
  // zero moments where fresh[i] (a copy, not a survivor). No-op for a parameter never updated.
  void remap_rows(const std::string& name, const std::vector<int64_t>& rows,
                  const std::vector<bool>& fresh);

 private:
  std::map<std::string, at::Tensor> exp_avg_, exp_avg_sq_;
};

// Global L2 norm of all gradients; scales them to max_norm when above it (max_norm > 0).
double clip_grad_norm(ParamStore& params, double max_norm);
// The same in tensor ops on the gradients' device.
double clip_grad_norm_generic(ParamStore& params, double max_norm);

}  // namespace unipool
