// AdamW over a ParamStore, one fused loop per tensor (first and second moments, bias
// correction, decoupled weight decay). Moments are keyed by parameter name so that a pool
// resize can carry the surviving rows' state over.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "model.h"

namespace unipool {

struct AdamWSettings {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

class AdamW {
 public:
  // Applies one update to every parameter with a gradient. `step` counts from 1.
  void update(ParamStore& params, const AdamWSettings& s, int64_t step);
  // Moments of one parameter (created as zeros on first use).
  at::Tensor& exp_avg(const std::string& name, const at::Tensor& like);
  at::Tensor& exp_avg_sq(const std::string& name, const at::Tensor& like);
  bool has(const std::string& name) const { return m_.count(name) != 0; }
  // For checkpoints and resizing.
  std::map<std::string, at::Tensor>& first_moments() { return m_; }
  std::map<std::string, at::Tensor>& second_moments() { return v_; }

 private:
  std::map<std::string, at::Tensor> m_, v_;
};

// Global L2 norm of all gradients; scales them to max_norm when above it (max_norm > 0).
double clip_grad_norm(ParamStore& params, double max_norm);

}  // namespace unipool
