#include "views/compare_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QVBoxLayout>

#include "session/run_session.h"
#include "views/loss_curves_view.h"
#include "views/plot_style.h"
#include "views/routing_heatmap_view.h"

namespace unipool::studio {

CompareView::CompareView(RunSession* a, QWidget* parent) : QWidget(parent), a_(a) {
  caption_ = new QLabel(this);
  caption_->setWordWrap(true);
  loss_ = new LossCurvesView(this);
  loss_->addSession(a_, categoryColor(0));
  heat_a_ = new RoutingHeatmapView(a_, this);
  auto* maps = new QSplitter(Qt::Horizontal, this);
  maps->addWidget(heat_a_);
  auto* bar = new QHBoxLayout;
  const QString names[kOthers] = {QStringLiteral("B"), QStringLiteral("C")};
  for (int i = 0; i < kOthers; ++i) {
    // Compute threads 0: run A's setting stays; the runs share the process's BLAS threads.
    others_.push_back(std::make_unique<RunSession>(names[i], 0));
    auto* preset = new QComboBox(this);
    for (const auto& name : preset_names()) preset->addItem(QString::fromStdString(name));
    preset->setCurrentText(i == 0 ? QStringLiteral("vanilla") : QStringLiteral("lock-random"));
    presets_.push_back(preset);
    auto* create = new QPushButton(tr("Create %1").arg(names[i]), this);
    create->setToolTip(tr("Same data, seed, batch and schedule as run A"));
    bar->addWidget(new QLabel(tr("Run %1:").arg(names[i]), this));
    bar->addWidget(preset);
    bar->addWidget(create);
    loss_->addSession(other(i), categoryColor(1 + i));
    auto* heat = new RoutingHeatmapView(other(i), this);
    heat->setVisible(i == 0);  // C appears once it exists
    heats_.push_back(heat);
    maps->addWidget(heat);
    connect(create, &QPushButton::clicked, this,
            [this, i] { createOther(i, presets_[size_t(i)]->currentText()); });
    connect(other(i), &RunSession::stateChanged, this, &CompareView::describe);
  }
  auto* start = new QPushButton(tr("Start all"), this);
  auto* pause = new QPushButton(tr("Pause all"), this);
  bar->addWidget(start);
  bar->addWidget(pause);
  bar->addStretch(1);
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(loss_);
  split->addWidget(maps);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(bar);
  layout->addWidget(caption_);
  layout->addWidget(split, 1);

  connect(start, &QPushButton::clicked, this, &CompareView::startBoth);
  connect(pause, &QPushButton::clicked, this, &CompareView::pauseBoth);
  connect(a_, &RunSession::stateChanged, this, &CompareView::describe);
  describe();
}

CompareView::~CompareView() = default;

void CompareView::createOther(int i, const QString& name) {
  Preset p;
  try {
    p = preset(name.toStdString());
  } catch (const ConfigError& e) {
    caption_->setText(QString::fromUtf8(e.what()));
    return;
  }
  // Same data and the same stream of batches: only the architecture differs.
  TrainOptions options = p.train;
  DataSpec data;
  if (a_->state().valid) {
    options = a_->state().options;
    data.path = a_->state().data_path;
  }
  fit_lock_schedule(p.model.lock, options.total_steps);  // a learned one follows A's length
  heats_[size_t(i)]->setVisible(true);
  other(i)->post(cmd::CreateRun{p.model, options, data, name});
}

void CompareView::startBoth() {
  if (a_->state().valid) a_->post(cmd::Start{});
  for (const auto& s : others_)
    if (s->state().valid) s->post(cmd::Start{});
}

void CompareView::pauseBoth() {
  a_->post(cmd::Pause{});
  for (const auto& s : others_) s->post(cmd::Pause{});
}

void CompareView::describe() {
  auto line = [](const QString& label, const RunState& s) {
    if (!s.valid) return tr("%1: no run").arg(label);
    const ParamCounts p = count_parameters(s.config);
    return tr("%1: %2, %3 pool(s) x %4 experts, %5% of the vanilla expert budget")
        .arg(label, s.source)
        .arg(s.config.n_groups())
        .arg(s.config.experts_per_group)
        .arg(100.0 * p.budget_ratio, 0, 'f', 1);
  };
  QString text = line(tr("A (left)"), a_->state());
  const QString names[kOthers] = {tr("B"), tr("C")};
  for (int i = 0; i < kOthers; ++i)
    if (i == 0 || other(i)->state().valid)
      text += QStringLiteral("<br>") + line(names[i], other(i)->state());
  caption_->setText(text);
}

}  // namespace unipool::studio
