#include "views/live_controls.h"

#include <QCheckBox>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>
#include <algorithm>

#include "session/run_session.h"
#include "views/form_widgets.h"

namespace unipool::studio {

LiveControls::LiveControls(RunSession* session, QWidget* parent)
    : QWidget(parent), session_(session) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(buildRunBox());
  live_box_ = buildLiveBox();
  layout->addWidget(live_box_);
  // Training updates (~20 a second) refresh only the status: the live boxes follow the engine
  // when its settings change, so a value typed but not yet applied is not overwritten.
  connect(session_, &RunSession::stateChanged, this, &LiveControls::syncFromState);
  connect(session_, &RunSession::updated, this, &LiveControls::updateStatus);
  connect(session_, &RunSession::runningChanged, this, &LiveControls::updateStatus);
  syncFromState();
}

QWidget* LiveControls::buildRunBox() {
  auto* box = new QGroupBox(tr("Run"), this);
  auto* grid = new QGridLayout(box);
  start_ = new QPushButton(tr("Start"), box);
  pause_ = new QPushButton(tr("Pause"), box);
  step_ = new QPushButton(tr("Step"), box);
  reset_ = new QPushButton(tr("Reset"), box);
  reset_->setObjectName(QStringLiteral("reset"));
  step_->setToolTip(tr("Train exactly one step"));
  reset_->setToolTip(tr("Start this run again from fresh weights"));
  status_ = new QLabel(box);
  device_ = new QLabel(tr("Device: CPU"), box);
  device_->setObjectName(QStringLiteral("deviceLabel"));
  grid->addWidget(start_, 0, 0);
  grid->addWidget(pause_, 0, 1);
  grid->addWidget(step_, 0, 2);
  grid->addWidget(reset_, 0, 3);
  grid->addWidget(status_, 1, 0, 1, 4);
  grid->addWidget(device_, 2, 0, 1, 4);
  connect(start_, &QPushButton::clicked, this, [this] { session_->post(cmd::Start{}); });
  connect(pause_, &QPushButton::clicked, this, [this] { session_->post(cmd::Pause{}); });
  connect(step_, &QPushButton::clicked, this, [this] { session_->post(cmd::StepOnce{}); });
  connect(reset_, &QPushButton::clicked, this, [this] {
    const RunState& s = session_->state();
    if (!s.valid) return;
    // Fresh weights are not the opened file's: a label that is not a path keeps Save from
    // writing them over it.
    const QString label = s.source.endsWith(QLatin1String(".safetensors"))
                              ? tr("%1 (reset)").arg(QFileInfo(s.source).completeBaseName())
                              : s.source;
    session_->post(cmd::CreateRun{s.config, s.options, DataSpec{s.data_path}, label});
  });
  return box;
}

template <class Spin, class Make, class Current>
void LiveControls::addSettingRow(QFormLayout* form, const QString& label, Spin* spin,
                                 const QString& name, const QString& button,
                                 const QString& button_name, Make make, Current current) {
  spin->setObjectName(name);
  auto* apply = new QPushButton(button, spin->parentWidget());
  apply->setObjectName(button_name);
  auto* row = new QHBoxLayout;
  row->addWidget(spin, 1);
  row->addWidget(apply);
  form->addRow(label, row);
  connect(apply, &QPushButton::clicked, this,
          [this, spin, make] { session_->post(LiveSetting{make(spin->value())}); });
  followers_.push_back([spin, current](const RunState& s) {
    if (!spin->hasFocus()) spin->setValue(current(s));
  });
}

QWidget* LiveControls::buildLiveBox() {
  auto* box = new QGroupBox(tr("While training"), this);
  auto* form = new QFormLayout(box);
  addSettingRow(
      form, tr("Peak lr"), dspin(box, 1e-6, 10, 3e-3, 6, 5e-4), QStringLiteral("liveLearningRate"),
      tr("Set"), QStringLiteral("setLearningRate"), [](double v) { return LearningRate{v}; },
      [](const RunState& s) { return s.options.lr; });
  addSettingRow(
      form, tr("Aux coef"), dspin(box, 0, 10, 0.01, 4, 0.005), QStringLiteral("liveAuxCoef"),
      tr("Set"), QStringLiteral("setAuxCoef"), [](double v) { return AuxCoef{v}; },
      [](const RunState& s) { return s.config.aux_coef; });
  addSettingRow(
      form, tr("Z-loss coef"), dspin(box, 0, 10, 0, 5, 1e-3), QStringLiteral("liveZCoef"),
      tr("Set"), QStringLiteral("setZCoef"), [](double v) { return ZCoef{v}; },
      [](const RunState& s) { return s.config.z_coef; });
  addSettingRow(
      form, tr("Top-k"), spin(box, 1, 8, 1), QStringLiteral("liveTopK"), tr("Set"),
      QStringLiteral("setTopK"), [](int v) { return TopK{v}; },
      [](const RunState& s) { return s.config.top_k; });
  auto* pool = spin(box, 1, 1024, 24,
                    tr("Experts in each pool: grow by copying the busiest "
                       "experts, shrink by dropping the least used"));
  addSettingRow(
      form, tr("Pool size"), pool, QStringLiteral("livePoolSize"), tr("Resize"),
      QStringLiteral("resizePool"),
      [](int v) {
        return PoolSize{v, {}};
      },
      [](const RunState& s) { return s.config.experts_per_group; });

  auto* random_box = new QWidget(box);
  switches_layout_ = new QGridLayout(random_box);
  switches_layout_->setContentsMargins(0, 0, 0, 0);
  form->addRow(tr("Random routing"), random_box);
  auto* from_row = new QHBoxLayout;
  random_from_ = spin(box, 0, 47, 3);
  auto* apply_from = new QPushButton(tr("Random from layer k down"), box);
  apply_from->setToolTip(
      tr("Route layers k..L-1 at random and keep the learned routers above: "
         "the paper's test of how much deep routing matters"));
  auto* all_learned = new QPushButton(tr("All learned"), box);
  from_row->addWidget(random_from_);
  from_row->addWidget(apply_from, 1);
  from_row->addWidget(all_learned);
  form->addRow(tr("k"), from_row);

  // UniPool-lock: a teacher need not wait for the schedule's fractions.
  auto* lock_row = new QHBoxLayout;
  freeze_ = new QPushButton(tr("Freeze now"), box);
  freeze_->setObjectName(QStringLiteral("freezeNow"));
  freeze_->setToolTip(
      tr("UniPool-lock: give each expert its owner layer now, from the "
         "validation routing; the other experts then fade out"));
  lock_ = new QPushButton(tr("Lock now"), box);
  lock_->setObjectName(QStringLiteral("lockNow"));
  lock_->setToolTip(
      tr("UniPool-lock: from the next step each layer routes over its own "
         "experts only"));
  lock_row->addWidget(freeze_);
  lock_row->addWidget(lock_);
  form->addRow(tr("Lock"), lock_row);
  freeze_->setEnabled(false);
  lock_->setEnabled(false);
  connect(freeze_, &QPushButton::clicked, this, [this] { session_->post(FreezeNow{}); });
  connect(lock_, &QPushButton::clicked, this, [this] { session_->post(LockNow{}); });
  connect(apply_from, &QPushButton::clicked, this,
          [this] { randomFromLayer(random_from_->value()); });
  connect(all_learned, &QPushButton::clicked, this,
          [this] { randomFromLayer(session_->state().config.n_layers); });
  return box;
}

void LiveControls::randomFromLayer(int from) {
  session_->post(RandomLayers::from_layer(session_->state().config.n_layers, from));
}

QCheckBox* LiveControls::randomSwitch(int layer) const {
  return layer >= 0 && layer < int(switches_.size()) ? switches_[size_t(layer)] : nullptr;
}

void LiveControls::updateStatus() {
  const RunState& s = session_->state();
  const bool running = session_->isRunning();
  start_->setEnabled(s.valid && s.can_train && !running);
  pause_->setEnabled(running);
  step_->setEnabled(s.valid && s.can_train && !running);
  reset_->setEnabled(s.valid && !s.watching);  // a watched run is not ours to restart
  if (!s.valid) {
    status_->setText(tr("No run: pick a preset and press Create run."));
    return;
  }
  // A resumed run may train past its schedule; the learning rate then stays at its floor.
  const QString progress =
      s.step <= s.options.total_steps
          ? tr("Step %1 of %2").arg(s.step).arg(s.options.total_steps)
          : tr("Step %1 (past the %2-step schedule)").arg(s.step).arg(s.options.total_steps);
  QString phase;
  if (s.lock.enabled) {
    phase =
        s.lock.phase == LockPhase::FullPool
            ? tr("   full pool (freeze at %1)").arg(s.lock.freeze_step)
        : s.lock.phase == LockPhase::Fade
            ? tr("   fading %1% (lock at %2)").arg(int(100 * s.lock.alpha)).arg(s.lock.lock_step)
            : tr("   locked");
  }
  status_->setText(tr("%1   %2 tokens/s   %3%4")
                       .arg(progress)
                       .arg(session_->tokensPerSecond(), 0, 'f', 0)
                       .arg(running ? tr("training") : tr("paused"))
                       .arg(phase));
  freeze_->setEnabled(s.valid && s.lock.enabled && s.lock.phase == LockPhase::FullPool);
  lock_->setEnabled(s.valid && s.lock.enabled && s.lock.phase == LockPhase::Fade);
  live_box_->setEnabled(!s.watching);  // a watched run trains elsewhere: read-only here
}

void LiveControls::syncFromState() {
  updateStatus();
  const RunState& s = session_->state();
  if (!s.valid) return;
  device_->setText(tr("Device: %1").arg(s.compute));
  // Rebuild the per-layer switches when the layer count changes; then mirror the engine.
  if (int(switches_.size()) != s.config.n_layers) {
    for (QCheckBox* b : switches_) b->deleteLater();
    switches_.clear();
    for (int l = 0; l < s.config.n_layers; ++l) {
      auto* b = new QCheckBox(tr("L%1").arg(l), this);
      b->setToolTip(tr("Route layer %1 at random (gates from its router's scores)").arg(l));
      // The switch flips its layer in the engine's current set (not in the other boxes').
      connect(b, &QCheckBox::clicked, this,
              [this, l] { session_->post(cmd::ToggleRandomLayer{l}); });
      switches_layout_->addWidget(b, l / 6, l % 6);
      switches_.push_back(b);
    }
    random_from_->setMaximum(std::max(0, s.config.n_layers - 1));
  }
  for (size_t l = 0; l < switches_.size(); ++l) {
    const bool on = l < s.random_layers.size() && s.random_layers[l];
    if (switches_[l]->isChecked() != on) switches_[l]->setChecked(on);
  }
  for (const auto& follow : followers_) follow(s);
}

}  // namespace unipool::studio
