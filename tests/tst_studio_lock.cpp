// UniPool-lock in the studio, offscreen: the phase reaches every view (markers, the heatmap's
// partition, dimming and grey cells, the coverage strip), Freeze now / Lock now, a lock run
// from the new-run form, and the fail-stop's dialog.
#include <qcustomplot.h>

#include <QApplication>
#include <QComboBox>
#include <QPushButton>
#include <QSignalSpy>
#include <QtTest>
#include <cmath>
#include <memory>

#include "session/run_session.h"
#include "studio_window_util.h"
#include "unipool/architecture.h"
#include "views/controls_panel.h"
#include "views/live_controls.h"
#include "views/new_run_form.h"
#include "views/pool_balance_view.h"
#include "views/routing_heatmap_view.h"

using namespace unipool::studio;
using namespace studio_test;

namespace {

// The tiny shape as a lock run: 2 layers, K = 8 of 16; freeze at 50, lock at 100.
unipool::Preset tiny_lock() {
  unipool::Preset p = tiny_preset();
  unipool::apply_architecture(p.model, unipool::Architecture::UniPoolLock);
  p.model.lock = unipool::lock_schedule(300);
  unipool::refresh_router_constant(p.model);
  p.train.total_steps = 300;
  return p;
}

std::unique_ptr<MainWindow> lock_window(const unipool::Preset& p) {
  auto w = std::make_unique<MainWindow>();
  w->resize(1300, 850);
  w->show();
  w->session()->post(cmd::CreateRun{p.model, p.train, small_data(), QStringLiteral("tiny-lock")});
  wait_until([&] { return w->session()->state().valid; });
  return w;
}

bool has_change(const RunHistory& h, const QString& kind) {
  for (const ChangeEvent& e : h.changes())
    if (e.kind == kind) return true;
  return false;
}

}  // namespace

class TestStudioLock : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase() { QStandardPaths::setTestModeEnabled(true); }
  void cleanup() { close_dialogs(); }

  // A run through all three phases: markers, state, the heatmap's partition and grey cells.
  void phasesReachTheViews() {
    auto w = lock_window(tiny_lock());
    RunSession* s = w->session();
    QCOMPARE(s->state().lock.phase, unipool::LockPhase::FullPool);
    QVERIFY(train(*s, 120));
    QCOMPARE(s->state().lock.phase, unipool::LockPhase::Locked);
    QVERIFY(has_change(s->history(), QStringLiteral("freeze")));
    QVERIFY(has_change(s->history(), QStringLiteral("lock")));
    // The engine's own validations are the curve's points (every 50 steps).
    QCOMPARE(s->history().validation().size(), size_t(2));

    RoutingHeatmapView* heat = w->heatmap();
    const auto& owned = s->state().lock.owned;
    QCOMPARE(owned.size(), size_t(2));
    // Locked: another layer's experts are unreachable (NaN: grey), its own carry the share.
    int grey = 0;
    for (int e = 0; e < 16; ++e) {
      const bool mine = std::count(owned[0].begin(), owned[0].end(), e) > 0;
      if (!mine) {
        QVERIFY(std::isnan(heat->cellValue(0, e)));
        ++grey;
      } else {
        QVERIFY(!std::isnan(heat->cellValue(0, e)));
      }
    }
    QCOMPARE(grey, 8);
    QVERIFY(heat->plot()->yAxis2->visible());  // the coverage strip
    QVERIFY(heat->describeCell(0, owned[1][0]).contains(QStringLiteral("owned by another")));
    // Scrubbing back to before the freeze: the whole pool, no strip.
    heat->showSnapshot(0);
    QVERIFY(!heat->plot()->yAxis2->visible());
    for (int e = 0; e < 16; ++e) QVERIFY(!std::isnan(heat->cellValue(0, e)));
    heat->showSnapshot(-1);
    QVERIFY(
        w->balance()->diagnosticsText().contains(QStringLiteral("routes outside the partition 0")));
  }

  // Freeze now and Lock now, as a teacher presses them.
  void freezeAndLockButtons() {
    auto w = lock_window(tiny_lock());
    RunSession* s = w->session();
    QVERIFY(train(*s, 10));
    auto* freeze = w->controls()->findChild<QPushButton*>(QStringLiteral("freezeNow"));
    auto* lock = w->controls()->findChild<QPushButton*>(QStringLiteral("lockNow"));
    QVERIFY(freeze->isEnabled());
    QVERIFY(!lock->isEnabled());
    freeze->click();
    QVERIFY(wait_until([&] { return s->state().lock.phase == unipool::LockPhase::Fade; }));
    QCOMPARE(s->state().lock.freeze_step, 10);
    QVERIFY(wait_until([&] { return lock->isEnabled(); }));
    lock->click();  // at the freeze's own step: locked from the next step
    QVERIFY(wait_until([&] { return s->state().lock.lock_step == 11; }));
    QVERIFY(train(*s, 1));
    QVERIFY(wait_until([&] { return s->state().lock.phase == unipool::LockPhase::Locked; }));
    QVERIFY(has_change(s->history(), QStringLiteral("freeze")));
    QVERIFY(has_change(s->history(), QStringLiteral("lock")));
    QVERIFY(!freeze->isEnabled() && !lock->isEnabled());
  }

  // The new-run form makes a lock run whose schedule follows its steps.
  void lockRunFromTheForm() {
    auto w = tiny_window();
    NewRunForm* form = w->controls()->form();
    form->setArchitecture(unipool::Architecture::UniPoolLock);
    const unipool::ModelConfig c = form->formConfig();
    QVERIFY(c.lock.enabled);
    QCOMPARE(c.experts_per_group, 8 * c.n_layers);
    QCOMPARE(c.lock.freeze_step,
             unipool::lock_schedule(form->formOptions().total_steps).freeze_step);
    form->createRunFromForm();
    QVERIFY(wait_until([&] { return w->session()->state().lock.enabled; }));
  }

  // A fail-stop pauses training and says why.
  void failStopGivesADialog() {
    unipool::Preset p = tiny_lock();
    p.model.lock.loss_margin = 0.0;
    auto w = lock_window(p);
    RunSession* s = w->session();
    QVERIFY(train(*s, 50));
    s->post(unipool::LearningRate{2.0});
    QSignalSpy halted(s, &RunSession::halted);
    s->post(cmd::RunUntil{400});
    QVERIFY(halted.wait(60000));
    QVERIFY(halted.at(0).at(0).toString().contains(QStringLiteral("fail-stop")));
    QVERIFY(wait_until([&] { return !s->isRunning(); }));
    QVERIFY(error_dialog() != nullptr);
    QVERIFY(s->state().lock.stopped);
  }
};

QTEST_MAIN(TestStudioLock)
#include "tst_studio_lock.moc"
