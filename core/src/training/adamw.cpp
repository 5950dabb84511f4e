#include "training/adamw.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "cpu_kernels/cpu_kernels.h"
#include "model/param_names.h"
#include "model/parallel_work.h"

namespace unipool {

at::Tensor& AdamW::exp_avg(const std::string& name, const at::Tensor& like) {
  auto it = exp_avg_.find(name);
  if (it == exp_avg_.end()) it = exp_avg_.emplace(name, at::zeros_like(like.detach())).first;
  return it->second;
}

at::Tensor& AdamW::exp_avg_sq(const std::string& name, const at::Tensor& like) {
  auto it = exp_avg_sq_.find(name);
  if (it == exp_avg_sq_.end()) it = exp_avg_sq_.emplace(name, at::zeros_like(like.detach())).first;
  return it->second;
}

void AdamW::remap_rows(const std::string& name, const std::vector<int64_t>& rows,
                       const std::vector<bool>& fresh) {
  torch::NoGradGuard no_grad;
  const at::Tensor index = at::tensor(rows, at::TensorOptions().dtype(at::kLong));
  for (auto* moments : {&exp_avg_, &exp_avg_sq_}) {
    auto it = moments->find(name);
    if (it == moments->end()) continue;
    at::Tensor out = it->second.index_select(0, index).contiguous();
    for (size_t i = 0; i < rows.size(); ++i)
      if (fresh[i]) out[int64_t(i)].zero_();
    it->second = out;
  }
}

double AdamWSettings::decay_of(const std::string& name) const {
  if (!ParamStore::decays(name)) return 0.0;
  if (router_weight_decay >= 0 && param_names::is_router_weight(name)) return router_weight_decay;
  return weight_decay;
}

namespace {

// What both updates share: the step's bias corrections and, for every parameter with a
// gradient, its moments and its weight-decay coefficient.
struct BiasCorrection {
  double bc1, bc2;
  BiasCorrection(const AdamWSettings& s, int64_t step)
      : bc1(1.0 - std::pow(s.beta1, double(step))), bc2(1.0 - std::pow(s.beta2, double(step))) {}
};

template <class F>
void for_each_gradient(AdamW& opt, ParamStore& params, const AdamWSettings& s, F&& f) {
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = params.tensor(i);
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    const std::string& name = params.name(i);
    f(p, g, opt.exp_avg(name, p), opt.exp_avg_sq(name, p), s.decay_of(name));
  }
}

}  // namespace

void AdamW::update(ParamStore& params, const AdamWSettings& s, int64_t step) {
  const BiasCorrection c(s, step);
  for_each_gradient(
      *this, params, s,
      [&](at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, double wd) {
        const double decay = 1.0 - s.lr * wd;
        const at::Tensor gc = g.contiguous();
        if (p.scalar_type() == at::kFloat) {
          // Element by element: ranges on the compute threads give the same bytes.
          float *pp = p.data_ptr<float>(), *mp = m.data_ptr<float>(), *vp = v.data_ptr<float>();
          const float* gp = gc.data_ptr<float>();
          at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
            cpu::adamw(pp + begin, gp + begin, mp + begin, vp + begin, end - begin,
                       float(s.beta1), float(s.beta2), float(s.lr / c.bc1),
                       float(1.0 / std::sqrt(c.bc2)), float(s.eps), float(decay));
          });
          return;
        }
        AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "adamw", [&] {
          scalar_t* pp = p.data_ptr<scalar_t>();
          scalar_t *mp = m.data_ptr<scalar_t>(), *vp = v.data_ptr<scalar_t>();
          const scalar_t* gp = gc.data_ptr<scalar_t>();
          const scalar_t b1 = scalar_t(s.beta1), b2 = scalar_t(s.beta2);
          const scalar_t step_size = scalar_t(s.lr / c.bc1), eps = scalar_t(s.eps);
          const scalar_t inv_sqrt_bc2 = scalar_t(1.0 / std::sqrt(c.bc2)), dec = scalar_t(decay);
          const int64_t n = p.numel();
          for (int64_t j = 0; j < n; ++j) {
            mp[j] = b1 * mp[j] + (scalar_t(1) - b1) * gp[j];
            vp[j] = b2 * vp[j] + (scalar_t(1) - b2) * gp[j] * gp[j];
            pp[j] = pp[j] * dec - step_size * mp[j] / (std::sqrt(vp[j]) * inv_sqrt_bc2 + eps);
          }
        });
      });
}

void AdamW::update_generic(ParamStore& params, const AdamWSettings& s, int64_t step) {
  // The fused loop's formula in tensor ops, on the parameters' device:
  //   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
  //   p = p * decay - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
  torch::NoGradGuard no_grad;
  const BiasCorrection c(s, step);
  for_each_gradient(
      *this, params, s,
      [&](at::Tensor& p, const at::Tensor& g, at::Tensor& m, at::Tensor& v, double wd) {
        m.mul_(s.beta1).add_(g, 1.0 - s.beta1);
        v.mul_(s.beta2).addcmul_(g, g, 1.0 - s.beta2);
        if (wd != 0) p.mul_(1.0 - s.lr * wd);
        p.addcdiv_(m, v.sqrt().mul_(1.0 / std::sqrt(c.bc2)).add_(s.eps), -s.lr / c.bc1);
      });
}

void AdamW::to(const at::Device& device) {
  for (auto* moments : {&exp_avg_, &exp_avg_sq_})
    for (auto& [name, t] : *moments) t = t.to(device);
}

double clip_grad_norm_generic(ParamStore& params, double max_norm) {
  torch::NoGradGuard no_grad;
  at::Tensor total;  // on the device, in double: one host read for the whole step
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& g = params.tensor(i).grad();
    if (!g.defined()) continue;
    const at::Tensor sq = g.to(at::kDouble).pow(2).sum();
    total = total.defined() ? total + sq : sq;
  }
  const double norm = total.defined() ? std::sqrt(total.item<double>()) : 0.0;
  if (max_norm > 0.0 && std::isfinite(norm) && norm > max_norm) {
    const double factor = max_norm / (norm + 1e-6);
    for (size_t i = 0; i < params.size(); ++i) {
      at::Tensor g = params.tensor(i).mutable_grad();
      if (g.defined()) g.mul_(factor);
    }
  }
  return norm;
}

double clip_grad_norm(ParamStore& params, double max_norm) {
  // Each float gradient's sum of squares on the compute threads (one parameter per task, so
  // each sum keeps its order), then the total in parameter order, as one thread adds it.
  std::vector<at::Tensor> grads(params.size());
  std::vector<double> sums(params.size(), 0.0);
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& g = params.tensor(i).grad();
    if (g.defined() && g.scalar_type() == at::kFloat) grads[i] = g.contiguous();
  }
  parallel_items(
      int64_t(grads.size()),
      [&](int64_t i) { return grads[size_t(i)].defined() ? grads[size_t(i)].numel() : 0; },
      [&](int64_t i) {
        const at::Tensor& g = grads[size_t(i)];
        if (g.defined()) sums[size_t(i)] = cpu::sum_squares(g.data_ptr<float>(), g.numel());
      });
  double total = 0.0;
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& g = params.tensor(i).grad();
    if (!g.defined()) continue;
    if (g.scalar_type() == at::kFloat) {
      total += sums[i];
      continue;
    }
    const at::Tensor gc = g.contiguous();
    AT_DISPATCH_FLOATING_TYPES(gc.scalar_type(), "grad_sumsq", [&] {
      const scalar_t* gp = gc.data_ptr<scalar_t>();
      double acc = 0.0;  // double accumulation: the norm of millions of floats
      for (int64_t j = 0; j < gc.numel(); ++j) acc += double(gp[j]) * double(gp[j]);
      total += acc;
    });
  }
  const double norm = std::sqrt(total);
  if (max_norm > 0.0 && std::isfinite(norm) && norm > max_norm) {
    const double factor = max_norm / (norm + 1e-6);
    for (size_t i = 0; i < params.size(); ++i) {
      at::Tensor g = params.tensor(i).mutable_grad();
      if (g.defined()) g.mul_(factor);
    }
  }
  return norm;
}

}  // namespace unipool
