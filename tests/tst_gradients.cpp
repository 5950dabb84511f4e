// Gradients by central finite differences in double precision: the fused operators of
// core/src/model/ (which have hand-written backward passes) and the full training loss CE + aux +
// z_loss of forward() for every parameter tensor of small models. The fused operators' gradients
// are also compared, entry by entry, with autograd through plain LibTorch reference expressions.
#include <torch/torch.h>

#include <QtTest>
#include <cmath>
#include <functional>

#include "internal_util.h"
#include "unipool/engine.h"

using namespace testutil;
using unipool::ModelConfig;

namespace {

constexpr double kEps = 1e-6;  // small enough that no top-k choice flips (checked below)
constexpr double kRel = 1e-5;

// Central-difference error bound: |analytic - numeric| <= kRel * scale + floor, where the floor
// covers the rounding error of (f(x+e) - f(x-e)) / 2e for |f| about `f_scale`.
bool close(double analytic, double numeric, double f_scale) {
  const double floor = 20.0 * std::max(1.0, std::abs(f_scale)) * 2.2e-16 / kEps;
  return std::abs(analytic - numeric) <=
         kRel * std::max(std::abs(analytic), std::abs(numeric)) + floor;
}

double& entry(at::Tensor& t, int64_t i) { return t.data_ptr<double>()[i]; }

// Up to `n` entries of a tensor: the one with the largest |grad| and a spread of others.
std::vector<int64_t> pick_entries(const at::Tensor& grad, int n, uint64_t salt) {
  const int64_t numel = grad.numel();
  std::vector<int64_t> out;
  if (numel <= n) {
    for (int64_t i = 0; i < numel; ++i) out.push_back(i);
    return out;
  }
  out.push_back(grad.abs().reshape(-1).argmax().item<int64_t>());
  uint64_t h = salt * 0x9E3779B97F4A7C15ull + 1;
  while (int(out.size()) < n) {
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    const int64_t i = int64_t(h % uint64_t(numel));
    if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
  }
  return out;
}

// f(inputs) -> tensor; checks d sum(f * R) / d input for every entry of every input.
void check_op(const char* what, const std::function<at::Tensor(const std::vector<at::Tensor>&)>& f,
              std::vector<at::Tensor> inputs,
              const std::function<at::Tensor(const std::vector<at::Tensor>&)>& reference) {
  for (auto& t : inputs) t = t.contiguous().requires_grad_(true);
  const at::Tensor out = f(inputs);
  const at::Tensor R = randn(out.sizes(), 99);  // a generic linear functional of the output
  (out * R).sum().backward();
  // The same gradient from autograd through the plain expression.
  std::vector<at::Tensor> ref_in;
  for (auto& t : inputs) ref_in.push_back(t.detach().clone().requires_grad_(true));
  QVERIFY2(max_rel_diff(out, reference(ref_in)) < 1e-12, what);
  (reference(ref_in) * R).sum().backward();
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    QVERIFY2(inputs[k].grad().defined(), what);
    QVERIFY2(max_rel_diff(inputs[k].grad(), ref_in[k].grad()) < 1e-11,
             qPrintable(QString("%1 input %2 vs autograd").arg(what).arg(k)));
    const auto g = to_vec(inputs[k].grad());
    for (int64_t i = 0; i < inputs[k].numel(); ++i) {
      const double orig = entry(inputs[k], i);
      entry(inputs[k], i) = orig + kEps;
      const double fp = (f(inputs) * R).sum().item<double>();
      entry(inputs[k], i) = orig - kEps;
      const double fm = (f(inputs) * R).sum().item<double>();
      entry(inputs[k], i) = orig;
      const double numeric = (fp - fm) / (2 * kEps);
      QVERIFY2(close(g[size_t(i)], numeric, fp),
               qPrintable(QString("%1 input %2 entry %3: %4 vs %5")
                              .arg(what)
                              .arg(k)
                              .arg(i)
                              .arg(g[size_t(i)])
                              .arg(numeric)));
    }
  }
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

struct Losses {
  double ce, aux, z;
  std::vector<at::Tensor> routes;
};

Losses model_losses(const ModelConfig& c, const unipool::ParamStore& p, const at::Tensor& tokens,
                    const at::Tensor& targets, const unipool::RouteControl& control) {
  torch::NoGradGuard no_grad;
  const unipool::ForwardResult out = unipool::forward(c, p, tokens, control);
  Losses l;
  l.ce = at::cross_entropy_loss(out.logits.reshape({-1, c.vocab_size}), targets.reshape({-1}))
             .item<double>();
  l.aux = out.aux.item<double>();
  l.z = out.z_loss.item<double>();
  for (const auto& r : out.routes) l.routes.push_back(r.local);
  return l;
}

// Finite differences of CE, aux and z_loss separately (and so of their sum, the training loss)
// for a few entries of every parameter tensor.
void check_model(const char* what, ModelConfig c, const std::vector<bool>& random_layers) {
  c = finish(c);
  unipool::ParamStore p = lively_params(c, 17);
  const int64_t B = 2, S = 5;
  const at::Tensor tokens = at::randint(0, 256, {B, S}, at::make_generator<at::CPUGeneratorImpl>(3),
                                        at::TensorOptions().dtype(at::kLong));
  const at::Tensor targets =
      at::randint(0, 256, {B, S}, at::make_generator<at::CPUGeneratorImpl>(4),
                  at::TensorOptions().dtype(at::kLong));
  unipool::RouteControl control;
  control.random_layers = random_layers;
  control.random_seed = 5;

  // Analytic gradients of each component.
  std::vector<std::vector<at::Tensor>> grads(3);
  for (int part = 0; part < 3; ++part) {
    const unipool::ForwardResult out = unipool::forward(c, p, tokens, control);
    const at::Tensor ce =
        at::cross_entropy_loss(out.logits.reshape({-1, c.vocab_size}), targets.reshape({-1}));
    const at::Tensor parts[3] = {ce, out.aux, out.z_loss};
    QVERIFY2(parts[part].requires_grad(),
             qPrintable(QString("%1 part %2 has no graph").arg(what).arg(part)));
    for (size_t i = 0; i < p.size(); ++i) p.tensor(i).mutable_grad().reset();
    parts[part].backward();
    for (size_t i = 0; i < p.size(); ++i) {
      const at::Tensor g = p.tensor(i).grad();
      grads[size_t(part)].push_back(g.defined() ? g.clone() : at::zeros_like(p.tensor(i)));
    }
  }
  const Losses base = model_losses(c, p, tokens, targets, control);
  QVERIFY(base.aux > 1e-3 && base.z > 1e-3);  // both terms are really present
  int checked = 0, skipped = 0;
  for (size_t ti = 0; ti < p.size(); ++ti) {
    at::Tensor& t = p.tensor(ti);
    const at::Tensor total = grads[0][ti] + grads[1][ti] + grads[2][ti];
    int done = 0;
    for (int64_t i : pick_entries(total, 6, ti + 1)) {
      if (done == 3) break;
      const double orig = entry(t, i);
      entry(t, i) = orig + kEps;
      const Losses lp = model_losses(c, p, tokens, targets, control);
      entry(t, i) = orig - kEps;
      const Losses lm = model_losses(c, p, tokens, targets, control);
      entry(t, i) = orig;
      bool flipped = false;  // a changed top-k choice makes the loss jump: not a gradient
      for (size_t l = 0; l < base.routes.size(); ++l)
        flipped |=
            !at::equal(lp.routes[l], base.routes[l]) || !at::equal(lm.routes[l], base.routes[l]);
      if (flipped) {
        ++skipped;
        continue;
      }
      const double num[3] = {(lp.ce - lm.ce) / (2 * kEps), (lp.aux - lm.aux) / (2 * kEps),
                             (lp.z - lm.z) / (2 * kEps)};
      const double scale[3] = {lp.ce, lp.aux, lp.z};
      for (int part = 0; part < 3; ++part) {
        const double a = grads[size_t(part)][ti].reshape(-1)[i].item<double>();
        QVERIFY2(close(a, num[part], scale[part]),
                 qPrintable(QString("%1: %2[%3] part %4 (0 ce, 1 aux, 2 z): analytic %5 numeric %6")
                                .arg(what)
                                .arg(QString::fromStdString(p.name(ti)))
                                .arg(i)
                                .arg(part)
                                .arg(a, 0, 'g', 10)
                                .arg(num[part], 0, 'g', 10)));
      }
      ++done;
      ++checked;
    }
    QVERIFY2(done >= std::min<int64_t>(2, t.numel()),
             qPrintable(QString("%1: %2 could not be checked")
                            .arg(what)
                            .arg(QString::fromStdString(p.name(ti)))));
  }
  QVERIFY(skipped <= checked / 4);
}

}  // namespace

class TestGradients : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() { unipool::set_compute_threads(1); }

  void rmsNorm() {
    const double eps = 1e-3;
    auto ref = [eps](const std::vector<at::Tensor>& in) {
      return in[0] * at::rsqrt(in[0].pow(2).mean(-1, true) + eps) * in[1];
    };
    check_op(
        "rms_norm",
        [eps](const std::vector<at::Tensor>& in) { return unipool::rms_norm(in[0], in[1], eps); },
        {randn({2, 3, 6}, 1) * 2.0, randn({6}, 2)}, ref);
  }

  void rope() {
    const auto [cos, sin] = unipool::rope_tables(5, 6, 100.0, at::kDouble);
    auto ref = [cos = cos, sin = sin](const std::vector<at::Tensor>& in) {
      const at::Tensor x = in[0].transpose(1, 2);  // (B, nh, S, hd)
      return x * cos + rotate_half(x) * sin;
    };
    check_op(
        "rope",
        [cos = cos, sin = sin](const std::vector<at::Tensor>& in) {
          return unipool::rope(in[0], cos, sin);
        },
        {randn({2, 5, 3, 6}, 3)}, ref);
  }

  void attention() {
    for (int64_t KV : {1, 2, 4}) {
      const int64_t B = 2, H = 4, S = 5, hd = 3;
      auto ref = [H, KV](const std::vector<at::Tensor>& in) {
        const int64_t S = in[0].size(2);
        const at::Tensor k = in[1].repeat_interleave(H / KV, 1),
                         v = in[2].repeat_interleave(H / KV, 1);
        at::Tensor s = at::matmul(in[0], k.transpose(-1, -2)) / std::sqrt(double(in[0].size(3)));
        const at::Tensor mask = at::ones({S, S}, at::TensorOptions().dtype(at::kBool)).triu(1);
        return at::matmul(at::softmax(s.masked_fill(mask, -INFINITY), -1), v);
      };
      check_op(
          "attention",
          [](const std::vector<at::Tensor>& in) {
            return unipool::causal_gqa_attention(in[0], in[1], in[2]);
          },
          {randn({B, H, S, hd}, 4), randn({B, KV, S, hd}, 5), randn({B, KV, S, hd}, 6)}, ref);
    }
  }

  void poolExperts() {
    const std::vector<int64_t> counts = {3, 0, 1, 4, 0};  // uneven, two empty experts
    const int64_t N = 5, d = 4, h = 3, A = 8;
    auto ref = [counts](const std::vector<at::Tensor>& in) {
      std::vector<at::Tensor> rows;
      int64_t off = 0;
      for (size_t e = 0; e < counts.size(); ++e) {
        const at::Tensor x = in[0].narrow(0, off, counts[e]);
        const at::Tensor a =
            at::silu(at::mm(x, in[1][int64_t(e)].t())) * at::mm(x, in[2][int64_t(e)].t());
        rows.push_back(at::mm(a, in[3][int64_t(e)].t()));
        off += counts[e];
      }
      return at::cat(rows, 0);
    };
    check_op(
        "pool_experts",
        [counts](const std::vector<at::Tensor>& in) {
          return unipool::pool_experts(in[0], counts, in[1], in[2], in[3]);
        },
        {randn({A, d}, 7), randn({N, h, d}, 8), randn({N, h, d}, 9), randn({N, d, h}, 10)}, ref);
  }

  void unipoolNormRouter() {
    ModelConfig c = small_config();  // 2 layers sharing one pool of 4, top-2
    c.aux_coef = 0.3;  // large enough that an error in its gradient shows in the total too
    c.z_coef = 0.01;
    check_model("unipool", c, {});
  }

  void vanillaSoftmax() {
    ModelConfig c = small_config();
    c.layers_per_group = 1;
    c.experts_per_group = 3;
    c.top_k = 1;
    c.router = "softmax";
    c.balance = "layer";
    c.aux_coef = 0.3;
    c.z_coef = 0.01;
    check_model("vanilla", c, {});
  }

  void groupedRenormalized() {
    ModelConfig c = small_config();
    c.n_layers = 4;
    c.layers_per_group = 2;
    c.experts_per_group = 3;
    c.top_k = 2;
    c.renormalize_gates = true;
    c.aux_coef = 0.3;
    c.z_coef = 0.01;
    check_model("grouped", c, {});
  }

  void randomLayer() {
    ModelConfig c = small_config();
    c.aux_coef = 0.3;
    c.z_coef = 0.01;
    check_model("random layer 1", c,
                {false, true});  // gate = learned gates' sum / k, differentiable
  }
};

QTEST_APPLESS_MAIN(TestGradients)
#include "tst_gradients.moc"
