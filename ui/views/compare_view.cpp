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

CompareView::CompareView(RunSession* a, QWidget* parent)
    : QWidget(parent), a_(a), b_(std::make_unique<RunSession>(QStringLiteral("B"), 0)) {
  preset_ = new QComboBox(this);
  for (const auto& name : preset_names()) preset_->addItem(QString::fromStdString(name));
  preset_->setCurrentText(QStringLiteral("vanilla"));
  auto* create = new QPushButton(tr("Create B beside A"), this);
  create->setToolTip(tr("Same data, seed, batch and schedule as run A"));
  auto* start = new QPushButton(tr("Start both"), this);
  auto* pause = new QPushButton(tr("Pause both"), this);
  caption_ = new QLabel(this);
  caption_->setWordWrap(true);

  loss_ = new LossCurvesView(this);
  loss_->addSession(a_, categoryColor(0));
  loss_->addSession(b_.get(), categoryColor(1));
  heat_a_ = new RoutingHeatmapView(a_, this);
  heat_b_ = new RoutingHeatmapView(b_.get(), this);

  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("Run B preset:"), this));
  bar->addWidget(preset_);
  bar->addWidget(create);
  bar->addWidget(start);
  bar->addWidget(pause);
  bar->addStretch(1);
  auto* maps = new QSplitter(Qt::Horizontal, this);
  maps->addWidget(heat_a_);
  maps->addWidget(heat_b_);
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(loss_);
  split->addWidget(maps);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(bar);
  layout->addWidget(caption_);
  layout->addWidget(split, 1);

  connect(create, &QPushButton::clicked, this, [this] { createB(preset_->currentText()); });
  connect(start, &QPushButton::clicked, this, &CompareView::startBoth);
  connect(pause, &QPushButton::clicked, this, &CompareView::pauseBoth);
  connect(a_, &RunSession::stateChanged, this, &CompareView::describe);
  connect(b_.get(), &RunSession::stateChanged, this, &CompareView::describe);
  describe();
}

CompareView::~CompareView() = default;

void CompareView::createB(const QString& name) {
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
  b_->createRun(p.model, options, data, name);
}

void CompareView::startBoth() {
  if (a_->state().valid) a_->start();
  if (b_->state().valid) b_->start();
}

void CompareView::pauseBoth() {
  a_->pause();
  b_->pause();
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
  caption_->setText(line(tr("A (left)"), a_->state()) + QStringLiteral("<br>") +
                    line(tr("B (right)"), b_->state()));
}

}  // namespace unipool::studio
