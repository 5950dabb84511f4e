// The model's parameters in a flat, ordered store keyed by their SPEC section 6 names, so the
// checkpoint, the optimizer and pool resizing all work on the same list. Private to core/.
#pragma once

#include <torch/torch.h>

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "unipool/config.h"

namespace unipool {

class ParamStore {
 public:
  void add(const std::string& name, at::Tensor tensor);
  at::Tensor& get(const std::string& name);
  const at::Tensor& get(const std::string& name) const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  size_t size() const { return names_.size(); }
  const std::string& name(size_t i) const { return names_[i]; }
  at::Tensor& tensor(size_t i) { return tensors_[i]; }
  const at::Tensor& tensor(size_t i) const { return tensors_[i]; }
  // AdamW's weight decay skips norms and NormRouter scales.
  static bool decays(const std::string& name);

 private:
  std::vector<std::string> names_;
  std::vector<at::Tensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

// Names and shapes of SPEC section 6, in checkpoint order.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_parameters(
    const ModelConfig& config);

// Fresh parameters (leaf tensors requiring grad). Deterministic for a seed on any platform:
// values come from our own RNG, not torch's.
// router_std > 0 draws the routers' weights from N(0, router_std) instead of the base 0.02.
ParamStore init_parameters(const ModelConfig& config, uint64_t seed, at::ScalarType dtype,
                           double router_std = 0.0);

}  // namespace unipool
