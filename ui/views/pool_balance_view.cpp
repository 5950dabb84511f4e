#include "views/pool_balance_view.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>

#include "session/run_session.h"
#include "views/plot_style.h"

namespace unipool::studio {

PoolBalanceView::PoolBalanceView(RunSession* session, QWidget* parent)
    : QWidget(parent), session_(session) {
  plot_ = new QCustomPlot(this);
  applyPlotStyle(plot_);
  plot_->setMinimumSize(320, 180);
  plot_->xAxis->setLabel(tr("pool expert (global id)"));
  setIdTicks(plot_->xAxis);
  plot_->yAxis->setLabel(tr("pool load (share of its pool's choices)"));
  stacked_ = new QCheckBox(tr("Stack by layer"), this);
  stacked_->setToolTip(tr("Split each bar by the layer whose tokens chose the expert"));
  connect(stacked_, &QCheckBox::toggled, this, [this] { draw(); });
  figures_ = new QLabel(this);
  figures_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  figures_->setWordWrap(true);

  auto* bar = new QHBoxLayout;
  bar->addWidget(stacked_);
  bar->addWidget(figures_, 1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(bar);
  layout->addWidget(plot_, 1);

  connect(session_, &RunSession::updated, this, &PoolBalanceView::refresh);
  connect(session_, &RunSession::stateChanged, this, &PoolBalanceView::refresh);
  refresh();
}

void PoolBalanceView::setStacked(bool stacked) { stacked_->setChecked(stacked); }

void PoolBalanceView::refresh() {
  counts_ = session_->history().latestRouting();
  // Loads count routed tokens only: zero-gate ones get their own "no expert" bar (SPEC 9).
  const LockStatus& lock = session_->state().lock;
  const bool locked = lock.phase == LockPhase::Locked && !lock.owned.empty();
  summary_ = counts_.empty()
                 ? RoutingSummary{}
                 : summarize(without_zero_gate(counts_, locked ? &lock.owned : nullptr));
  draw();
}

QString PoolBalanceView::figuresText() const {
  if (counts_.empty()) return tr("No routing yet: press Start or Step.");
  const RoutingSummary& s = summary_;
  return tr("imbalance %1 (1 = perfect)   CV %2   load entropy %3   dead experts %4 of %5   "
            "reuse %6   router entropy %7")
             .arg(s.imbalance, 0, 'f', 2)
             .arg(s.cv, 0, 'f', 2)
             .arg(s.load_entropy, 0, 'f', 3)
             .arg(s.dead_experts)
             .arg(s.n_experts)
             .arg(s.reuse, 0, 'f', 2)
             .arg(s.router_entropy, 0, 'f', 3) +
         diagnosticsText();
}

QString PoolBalanceView::diagnosticsText() const {
  // SPEC section 9, and for a lock run the routes that left the partition.
  const LockStatus& lock = session_->state().lock;
  const RoutingDiagnostics d =
      diagnose(counts_, lock.enabled && !lock.owned.empty() ? &lock.owned : nullptr);
  int64_t none = 0;
  for (int64_t z : d.zero_gate) none += z;
  QString text = tr("\ntop-16 coverage %1   entropy %2 bits   Jaccard(top-16) %3   effective-k "
                    "%4   no expert (zero gate) %5%")
                     .arg(d.top16_coverage_mean, 0, 'f', 3)
                     .arg(d.entropy_bits_mean, 0, 'f', 2)
                     .arg(d.jaccard_top16, 0, 'f', 2)
                     .arg(d.effective_k, 0, 'f', 1)
                     .arg(100.0 * double(none) /
                              double(std::max<int64_t>(1, counts_.tokens * counts_.n_layers)),
                          0, 'f', 1);
  QStringList unions;
  for (const auto& u : d.unions)
    if (u.k <= 16) unions << QStringLiteral("%1:%2").arg(u.k).arg(u.size);
  text += tr("   union of top-k (k:experts) %1").arg(unions.join(QLatin1Char(' ')));
  if (d.has_partition) text += tr("   routes outside the partition %1").arg(d.routes_outside);
  return text;
}

void PoolBalanceView::draw() {
  plot_->clearPlottables();
  plot_->clearItems();
  figures_->setText(figuresText());
  if (counts_.empty()) {
    // Before the first step: the pool's experts on an empty 0..1 scale.
    const RunState& st = session_->state();
    const int n = st.valid ? st.config.n_experts() : 1;
    plot_->xAxis->setRange(-0.7, n - 0.3);
    plot_->yAxis->setRange(0, 1);
    requestReplot(plot_);
    return;
  }
  const RoutingCounts& c = counts_;
  const int N = c.n_experts(), Mg = c.experts_per_group, G = c.layers_per_group;
  QVector<double> keys(N);
  for (int e = 0; e < N; ++e) keys[e] = e;
  // pool_load sums the layers' loads; / G makes each pool's bars sum to 1.
  if (!stacked_->isChecked()) {
    auto* bars = new QCPBars(plot_->xAxis, plot_->yAxis);
    QVector<double> values(N);
    for (int e = 0; e < N; ++e) values[e] = summary_.pool_load[size_t(e)] / G;
    bars->setData(keys, values, true);
    bars->setWidth(0.8);
    bars->setPen(Qt::NoPen);
    bars->setBrush(QColor("#4e79a7"));
    bars->setName(tr("pool load"));
  } else {
    QCPBars* below = nullptr;
    for (int l = 0; l < c.n_layers; ++l) {
      auto* bars = new QCPBars(plot_->xAxis, plot_->yAxis);
      QVector<double> values(N, 0.0);
      const int g = l / G;
      for (int i = 0; i < Mg; ++i) values[g * Mg + i] = summary_.load[size_t(l * Mg + i)] / G;
      bars->setData(keys, values, true);
      bars->setWidth(0.8);
      bars->setPen(Qt::NoPen);
      bars->setBrush(categoryColor(l));
      bars->setName(tr("layer %1").arg(l));
      if (below) bars->moveAbove(below);
      below = bars;
    }
  }
  int64_t none = 0;
  for (int64_t z : c.zero_gate) none += z;
  if (none > 0) {
    auto* nobar = new QCPBars(plot_->xAxis, plot_->yAxis);
    nobar->setData({double(N) + 0.5},
                   {double(none) / double(std::max<int64_t>(1, c.tokens * c.n_layers))});
    nobar->setWidth(0.8);
    nobar->setPen(Qt::NoPen);
    nobar->setBrush(QBrush(QColor(150, 150, 150), Qt::BDiagPattern));
    nobar->setName(tr("no expert (zero gate)"));
    auto* tag = new QCPItemText(plot_);
    tag->setPositionAlignment(Qt::AlignHCenter | Qt::AlignBottom);
    tag->position->setCoords(double(N) + 0.5, nobar->data()->at(0)->value);
    tag->setText(tr("no\nexpert"));
    tag->setColor(QColor(110, 110, 110));
    tag->setClipToAxisRect(false);
  }
  auto* ideal = new QCPItemStraightLine(plot_);
  ideal->point1->setCoords(0, 1.0 / Mg);
  ideal->point2->setCoords(1, 1.0 / Mg);
  ideal->setPen(QPen(QColor(200, 40, 40), 1.5, Qt::DashLine));
  auto* label = new QCPItemText(plot_);
  label->setPositionAlignment(Qt::AlignRight | Qt::AlignBottom);
  label->position->setCoords(N - 0.5, 1.0 / Mg);
  label->setText(tr("ideal 1/%1").arg(Mg));
  label->setColor(QColor(200, 40, 40));
  plot_->legend->setVisible(stacked_->isChecked() && c.n_layers <= 12);
  plot_->rescaleAxes();
  plot_->xAxis->setRange(-0.7, N + (none > 0 ? 2.2 : -0.3));
  plot_->yAxis->setRange(0, std::max(plot_->yAxis->range().upper, 1.0 / Mg) * 1.15);
  requestReplot(plot_);
}

}  // namespace unipool::studio
