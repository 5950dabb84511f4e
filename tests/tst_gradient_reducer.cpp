// The data-parallel gradient average overlapped with backward (distributed/gradient_reducer.h),
// in one process (a 1-rank Gloo group on loopback): the buckets of every parameter but the
// shared pool start while backward runs, in bucket order; the pool's start after it; the
// gradients that come out are the ones backward made (a sum over 1 rank, divided by 1), for
// the fused and the generic operators; a parameter with no gradient keeps none and holds the
// buckets after it back; a reducer of replaced tensors is recognised as stale.
#include <torch/torch.h>

#include <QCoreApplication>
#include <QtTest>

#include "internal_util.h"
#include "model/backend.h"
#include "model/param_names.h"
#include "distributed/communicator.h"
#include "distributed/gradient_reducer.h"
#include "unipool/config.h"

using namespace unipool;

namespace {

struct Step {
  std::vector<at::Tensor> grads;  // (params) clones, undefined where backward left none
  size_t early = 0, buckets = 0, late = 0;
};

std::vector<bool> pool_flags(const ParamStore& p) {
  std::vector<bool> late(p.size());
  for (size_t i = 0; i < p.size(); ++i)
    late[i] = p.name(i) == param_names::kPoolGate || p.name(i) == param_names::kPoolUp ||
              p.name(i) == param_names::kPoolDown;
  return late;
}

// One forward and backward of `preset`'s model, with a reducer when `comm` is given.
// `unused`: a parameter the model never touches is added last (so its bucket comes first in
// backward order): it never gets a gradient.
Step run(const char* preset, Communicator* comm, bool generic, bool unused = false) {
  const ModelConfig c = unipool::preset(preset).model;
  ParamStore p = init_parameters(c, 11, at::kFloat);
  if (unused) p.add("unused.weight", at::zeros({4}).set_requires_grad(true));
  const at::Tensor tokens =
      at::randint(0, 256, {2, 16}, at::make_generator<at::CPUGeneratorImpl>(5),
                  at::TensorOptions().dtype(at::kLong));
  RouteControl control;
  control.accumulate_pool_grads = true;
  const auto backend = generic ? generic_backend(false) : nullptr;
  control.backend = backend.get();
  std::unique_ptr<GradientReducer> reducer;
  Step s;
  if (comm) {
    const std::vector<bool> late = pool_flags(p);
    reducer = std::make_unique<GradientReducer>(*comm, p, late);
    reducer->begin_step();
    for (bool l : late) s.late += l;
  }
  const ForwardResult out = forward(c, p, tokens.narrow(1, 0, 15), control);
  const at::Tensor loss = at::cross_entropy_loss(out.logits.reshape({-1, c.vocab_size}),
                                                 tokens.narrow(1, 1, 15).reshape({-1})) +
                          out.aux;
  loss.backward();
  if (reducer) {
    reducer->finish();
    s.early = reducer->started_during_backward();
    s.buckets = reducer->buckets();
  }
  for (size_t i = 0; i < p.size(); ++i)
    s.grads.push_back(p.tensor(i).grad().defined() ? p.tensor(i).grad().clone() : at::Tensor());
  return s;
}

}  // namespace

class TestGradientReducer : public QObject {
  Q_OBJECT
  std::unique_ptr<Communicator> comm_;

 private Q_SLOTS:
  void initTestCase() {
    DistributedConfig d;
    d.world_size = 1;
    d.master_port = 32000 + int(QCoreApplication::applicationPid() % 20000);
    d.timeout_s = 20;
    comm_ = std::make_unique<Communicator>(d);
  }

  void bucketsStartDuringBackward_data() {
    QTest::addColumn<QString>("preset");
    QTest::addColumn<bool>("generic");
    QTest::newRow("default, fused") << "default" << false;
    QTest::newRow("vanilla, fused") << "vanilla" << false;
    QTest::newRow("default, generic") << "default" << true;
  }
  void bucketsStartDuringBackward() {
    QFETCH(QString, preset);
    QFETCH(bool, generic);
    const Step plain = run(qPrintable(preset), nullptr, generic);
    const Step reduced = run(qPrintable(preset), comm_.get(), generic);
    // Every bucket but the pool's (the last ones) started before backward ended.
    QVERIFY(reduced.buckets > 3);
    QVERIFY2(
        reduced.early >= reduced.buckets - 3 && reduced.early < reduced.buckets,
        qPrintable(
            QString("%1 of %2 buckets started early").arg(reduced.early).arg(reduced.buckets)));
    qInfo("%s: %zu of %zu buckets started during backward", qPrintable(QTest::currentDataTag()),
          reduced.early, reduced.buckets);
    // The sum over one rank, divided by one: the gradients backward made, bit for bit.
    for (size_t i = 0; i < plain.grads.size(); ++i) {
      QCOMPARE(plain.grads[i].defined(), reduced.grads[i].defined());
      if (plain.grads[i].defined()) QVERIFY(at::equal(plain.grads[i], reduced.grads[i]));
    }
  }

  void aParameterWithoutGradientHoldsTheLaterBuckets() {
    // Its bucket never completes, so the buckets after it wait for the end of backward (the
    // order is what pairs collectives across ranks); nothing hangs, it keeps no gradient and
    // every other gradient is backward's.
    const Step plain = run("default", nullptr, false, true);
    const Step reduced = run("default", comm_.get(), false, true);
    QCOMPARE(reduced.early, size_t(0));
    QVERIFY(!plain.grads.back().defined() && !reduced.grads.back().defined());
    for (size_t i = 0; i + 1 < plain.grads.size(); ++i)
      QVERIFY(at::equal(plain.grads[i], reduced.grads[i]));
  }

  void aReducerKnowsItsTensors() {
    const ModelConfig c = unipool::preset("tiny").model;
    ParamStore p = init_parameters(c, 3, at::kFloat);
    GradientReducer reducer(*comm_, p, pool_flags(p));
    QVERIFY(reducer.hooks(p));
    p.tensor(0) = p.tensor(0).detach().clone().set_requires_grad(true);  // a device move does this
    QVERIFY(!reducer.hooks(p));
  }
};

QTEST_GUILESS_MAIN(TestGradientReducer)
#include "tst_gradient_reducer.moc"
