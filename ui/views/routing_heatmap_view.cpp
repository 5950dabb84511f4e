#include "views/routing_heatmap_view.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "session/run_session.h"
#include "views/plot_style.h"
#include "views/routing_cells.h"

namespace unipool::studio {

RoutingHeatmapView::RoutingHeatmapView(RunSession* session, QWidget* parent)
    : QWidget(parent), session_(session) {
  plot_ = new QCustomPlot(this);
  applyPlotStyle(plot_);
  plot_->setMinimumSize(360, 220);
  plot_->axisRect()->setupFullAxesBox(true);
  plot_->xAxis->setLabel(tr("pool expert (global id)"));
  setIdTicks(plot_->xAxis);
  plot_->yAxis->setLabel(tr("layer (click a label: random routing on/off)"));
  plot_->yAxis->setRangeReversed(true);  // layer 0 on top, as in the model diagram
  map_ = new QCPColorMap(plot_->xAxis, plot_->yAxis);
  map_->setInterpolate(false);  // each cell is one (layer, expert): never blend neighbours
  scale_ = new QCPColorScale(plot_);
  plot_->plotLayout()->addElement(0, 1, scale_);
  scale_->setType(QCPAxis::atRight);
  map_->setColorScale(scale_);
  map_->setGradient(viridisGradient());
  auto* margins = new QCPMarginGroup(plot_);
  plot_->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
  scale_->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
  highlight_ = new QCPItemRect(plot_);
  highlight_->setPen(QPen(QColor(255, 64, 64), 2));
  highlight_->setBrush(Qt::NoBrush);
  highlight_->setVisible(false);

  mode_box_ = new QComboBox(this);
  mode_box_->addItem(tr("Share of the layer's tokens"));
  mode_box_->addItem(tr("Gate mass"));
  mode_box_->setToolTip(
      tr("Share: fraction of the layer's routing choices given to each "
         "expert. Gate mass: the mean gate value it received per token."));
  connect(mode_box_, &QComboBox::currentIndexChanged, this,
          [this](int i) { setMode(i == 1 ? GateMass : Share); });
  scrubber_ = new QSlider(Qt::Horizontal, this);
  scrubber_->setToolTip(tr("Replay the routing history: each position is a snapshot"));
  scrubber_->setRange(0, 0);
  live_ = new QCheckBox(tr("Live"), this);
  live_->setChecked(true);
  caption_ = new QLabel(this);
  caption_->setMinimumWidth(190);
  // Programmatic moves are signal-blocked, so this fires only when the user scrubs.
  connect(scrubber_, &QSlider::valueChanged, this, [this](int v) { showSnapshot(v); });
  connect(live_, &QCheckBox::toggled, this, [this](bool on) {
    if (on) showSnapshot(-1);
  });

  auto* bar = new QHBoxLayout;
  bar->addWidget(mode_box_);
  bar->addWidget(new QLabel(tr("History:"), this));
  bar->addWidget(scrubber_, 1);
  bar->addWidget(live_);
  bar->addWidget(caption_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(bar);
  layout->addWidget(plot_, 1);

  plot_->setMouseTracking(true);
  connect(plot_, &QCustomPlot::mouseMove, this, &RoutingHeatmapView::onMouseMove);
  connect(plot_, &QCustomPlot::mousePress, this, &RoutingHeatmapView::onMousePress);
  connect(session_, &RunSession::updated, this, [this] {
    if (live_->isChecked()) refresh();
  });
  connect(session_, &RunSession::stateChanged, this, [this] { draw(); });
  connect(&session_->history(), &RunHistory::snapshotsChanged, this,
          &RoutingHeatmapView::rebuildScrubber);
  draw();
}

void RoutingHeatmapView::setMode(Mode mode) {
  mode_ = mode;
  if (mode_box_->currentIndex() != int(mode)) mode_box_->setCurrentIndex(int(mode));
  draw();
}

void RoutingHeatmapView::rebuildScrubber() {
  const int n = int(session_->history().snapshots().size());
  // An emptied history is a new run: what was scrubbed to belongs to the old one.
  if (n == 0 && !live_->isChecked()) {
    showSnapshot(-1);
    return;
  }
  const bool live = live_->isChecked();
  const QSignalBlocker block(scrubber_);
  scrubber_->setRange(0, std::max(0, n - 1));
  if (live) scrubber_->setValue(scrubber_->maximum());
  if (live) refresh();
}

void RoutingHeatmapView::showSnapshot(int index) {
  const auto& snaps = session_->history().snapshots();
  if (index < 0 || snaps.empty()) {
    if (!live_->isChecked()) {
      const QSignalBlocker block(live_);
      live_->setChecked(true);
    }
    refresh();
    return;
  }
  index = std::min(index, int(snaps.size()) - 1);
  {
    const QSignalBlocker block(scrubber_);
    scrubber_->setValue(index);
  }
  if (live_->isChecked()) {
    const QSignalBlocker block(live_);
    live_->setChecked(false);
  }
  shown_ = snaps[size_t(index)].counts;
  shown_step_ = snaps[size_t(index)].step;
  shown_steps_ = snaps[size_t(index)].steps;
  draw();
}

void RoutingHeatmapView::refresh() {
  const RunHistory& h = session_->history();
  shown_ = h.latestRouting();
  shown_step_ = h.lastStep();
  shown_steps_ = h.snapshots().empty() ? 0 : h.snapshots().back().steps;
  draw();
}

const std::vector<std::vector<int>>* RoutingHeatmapView::shownPartition() const {
  const LockStatus& lock = session_->state().lock;
  if (!lock.enabled || lock.owned.empty() || shown_.empty()) return nullptr;
  if (shown_step_ < lock.freeze_step || int(lock.owned.size()) != shown_.n_layers) return nullptr;
  return &lock.owned;
}

bool RoutingHeatmapView::shownLocked() const {
  return shownPartition() && shown_step_ >= session_->state().lock.lock_step;
}

double RoutingHeatmapView::cellValue(int layer, int global_expert) const {
  // Shares leave out zero-gate tokens ("no expert", SPEC 9; the row labels count them).
  const double v =
      routingCellValue(mode_ == Share ? routed_ : shown_, layer, global_expert, mode_ == GateMass);
  if (std::isnan(v) || shown_.empty()) return v;
  const auto* owned = shownPartition();
  const bool mine = !owned || std::count((*owned)[size_t(layer)].begin(),
                                         (*owned)[size_t(layer)].end(), global_expert) > 0;
  if (shownLocked() && !mine) return std::numeric_limits<double>::quiet_NaN();  // unreachable
  return std::max(v, 0.0);
}

QString RoutingHeatmapView::describeCell(int layer, int global_expert) const {
  const RoutingCounts& c = shown_;
  const double v = cellValue(layer, global_expert);
  if (std::isnan(v)) {
    return shownLocked()
               ? tr("layer %1, expert %2: owned by another layer (locked)")
                     .arg(layer)
                     .arg(global_expert)
               : tr("layer %1, expert %2: not in this layer's pool").arg(layer).arg(global_expert);
  }
  const int local = global_expert - (layer / c.layers_per_group) * c.experts_per_group;
  const size_t cell = size_t(layer) * size_t(c.experts_per_group) + size_t(local);
  QString text = tr("layer %1, expert %2\nshare %3%  (%4 of %5 tokens)\ngate mass %6")
                     .arg(layer)
                     .arg(global_expert)
                     .arg(100.0 * double(c.counts[cell]) / (double(c.tokens) * c.top_k), 0, 'f', 1)
                     .arg(c.counts[cell])
                     .arg(c.tokens)
                     .arg(c.gate_sum[cell] / double(c.tokens), 0, 'f', 3);
  // Which kinds of text this expert takes at this layer: share of the expert's tokens.
  const auto& names = session_->state().domain_names;
  if (c.n_domains > 0 && c.counts[cell] > 0 && int(names.size()) >= c.n_domains) {
    std::vector<std::pair<int64_t, int>> by_domain;
    const size_t per_domain = size_t(c.n_layers) * size_t(c.experts_per_group);
    for (int d = 0; d < c.n_domains; ++d)
      by_domain.push_back({c.domain_counts[size_t(d) * per_domain + cell], d});
    std::sort(by_domain.rbegin(), by_domain.rend());
    QStringList parts;
    for (size_t i = 0; i < std::min<size_t>(3, by_domain.size()); ++i) {
      if (by_domain[i].first == 0) break;
      parts << QStringLiteral("%1 %2%")
                   .arg(QString::fromStdString(names[size_t(by_domain[i].second)]))
                   .arg(100.0 * double(by_domain[i].first) / double(c.counts[cell]), 0, 'f', 0);
    }
    text += tr("\nmost routed here: %1").arg(parts.join(QStringLiteral(", ")));
  }
  return text;
}

void RoutingHeatmapView::draw() {
  routed_ = without_zero_gate(shown_, shownLocked() ? shownPartition() : nullptr);
  const RunState& st = session_->state();
  const int L = shown_.empty() ? (st.valid ? st.config.n_layers : 1) : shown_.n_layers;
  const int N = shown_.empty() ? (st.valid ? st.config.n_experts() : 1) : shown_.n_experts();
  map_->data()->setSize(N, L);
  map_->data()->setRange(QCPRange(0, N - 1), QCPRange(0, L - 1));
  double top = 0;
  for (int l = 0; l < L; ++l) {
    for (int e = 0; e < N; ++e) {
      const double v = cellValue(l, e);
      map_->data()->setCell(e, l, v);
      if (!std::isnan(v)) top = std::max(top, v);
    }
  }
  map_->setDataRange(QCPRange(0, top > 0 ? top : 1));
  scale_->axis()->setLabel(mode_ == Share ? tr("share of layer's choices") : tr("gate mass"));

  // Layer labels say which rows route at random, and how many tokens had no expert at all.
  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  for (int l = 0; l < L; ++l) {
    const bool random = l < int(st.random_layers.size()) && st.random_layers[size_t(l)];
    QString label = random ? tr("L%1 random").arg(l) : tr("L%1").arg(l);
    if (!shown_.empty() && l < int(shown_.zero_gate.size()) && shown_.zero_gate[size_t(l)] > 0)
      label +=
          tr("\n%1% no expert")
              .arg(100.0 * double(shown_.zero_gate[size_t(l)]) / double(shown_.tokens), 0, 'f', 1);
    ticker->addTick(l, label);
  }
  plot_->yAxis->setTicker(ticker);
  // The coverage strip (UniPool-lock): the share of each layer's routes its own experts got.
  const auto* owned = shownPartition();
  plot_->yAxis2->setVisible(owned != nullptr);
  if (owned) {
    const RoutingDiagnostics d = diagnose(shown_, owned);
    QSharedPointer<QCPAxisTickerText> strip(new QCPAxisTickerText);
    for (int l = 0; l < L && l < int(d.partition_coverage.size()); ++l)
      strip->addTick(l, tr("%1% own").arg(100.0 * d.partition_coverage[size_t(l)], 0, 'f', 0));
    plot_->yAxis2->setTicker(strip);
    plot_->yAxis2->setTicks(true);
    plot_->yAxis2->setTickLabels(true);
    plot_->yAxis2->setSubTicks(false);
    plot_->yAxis2->setRange(plot_->yAxis->range());
    plot_->yAxis2->setRangeReversed(plot_->yAxis->rangeReversed());
  }
  plot_->xAxis->setRange(-0.5, N - 0.5);
  plot_->yAxis->setRange(-0.5, L - 0.5);

  // One outline per pool when there are several (vanilla, grouped): who owns which block.
  for (int i = plot_->itemCount() - 1; i >= 0; --i) {
    QCPAbstractItem* item = plot_->item(i);
    if (item != highlight_) plot_->removeItem(item);
  }
  if (!shown_.empty() && shown_.n_groups() > 1 && shown_.n_groups() <= 64) {
    for (int g = 0; g < shown_.n_groups(); ++g) {
      auto* block = new QCPItemRect(plot_);
      block->setPen(QPen(QColor(255, 255, 255, 200), 1));
      block->topLeft->setCoords(g * shown_.experts_per_group - 0.5,
                                g * shown_.layers_per_group - 0.5);
      block->bottomRight->setCoords((g + 1) * shown_.experts_per_group - 0.5,
                                    (g + 1) * shown_.layers_per_group - 0.5);
    }
  }
  // UniPool-lock from the freeze on: each layer's own experts outlined; during the fade the
  // others dim with the ramp; once locked they are unreachable (grey, like vanilla's).
  if (owned) {
    const LockStatus& lock = st.lock;
    const double alpha = fade_alpha(lock.freeze_step, lock.lock_step, shown_step_);
    for (int l = 0; l < L; ++l) {
      for (int e = 0; e < N; ++e) {
        const bool mine = std::count((*owned)[size_t(l)].begin(), (*owned)[size_t(l)].end(), e) > 0;
        if (!mine && (alpha <= 0 || alpha >= 1)) continue;
        auto* cell = new QCPItemRect(plot_);
        cell->topLeft->setCoords(e - 0.5, l - 0.5);
        cell->bottomRight->setCoords(e + 0.5, l + 0.5);
        if (mine) {
          cell->setPen(QPen(QColor(255, 255, 255, 230), 1.2));
          cell->setBrush(Qt::NoBrush);
        } else {
          cell->setPen(Qt::NoPen);
          cell->setBrush(QColor(40, 40, 40, int(200 * alpha)));
        }
      }
    }
  }
  // Random rows are hatched: their choices come from the RNG, not from the router.
  for (int l = 0; l < L && l < int(st.random_layers.size()); ++l) {
    if (!st.random_layers[size_t(l)]) continue;
    auto* hatch = new QCPItemRect(plot_);
    hatch->setPen(Qt::NoPen);
    hatch->setBrush(QBrush(QColor(255, 255, 255, 110), Qt::BDiagPattern));
    hatch->topLeft->setCoords(-0.5, l - 0.5);
    hatch->bottomRight->setCoords(N - 0.5, l + 0.5);
  }
  selectExpert(selected_expert_ < N ? selected_expert_ : -1);

  caption_->setText(shown_.empty() ? tr("no routing yet")
                                   : tr("step %1, %2 tokens%3")
                                         .arg(shown_step_)
                                         .arg(shown_.tokens)
                                         .arg(live_->isChecked() ? tr(" (live)") : QString()));
  requestReplot(plot_);
}

void RoutingHeatmapView::selectExpert(int global_expert) {
  selected_expert_ = global_expert;
  highlight_->setVisible(global_expert >= 0);
  if (global_expert >= 0) {
    const double layers = plot_->yAxis->range().upper;
    highlight_->topLeft->setCoords(global_expert - 0.5, -0.5);
    highlight_->bottomRight->setCoords(global_expert + 0.5, layers);
  }
  requestReplot(plot_);
}

bool RoutingHeatmapView::cellAt(const QPoint& pos, int* layer, int* expert) const {
  const double x = plot_->xAxis->pixelToCoord(pos.x());
  const double y = plot_->yAxis->pixelToCoord(pos.y());
  const int e = int(std::floor(x + 0.5)), l = int(std::floor(y + 0.5));
  if (e < 0 || l < 0 || e >= map_->data()->keySize() || l >= map_->data()->valueSize())
    return false;
  *layer = l;
  *expert = e;
  return true;
}

void RoutingHeatmapView::onMouseMove(QMouseEvent* event) {
  int l = 0, e = 0;
  if (!shown_.empty() && cellAt(event->pos(), &l, &e)) {
    QToolTip::showText(event->globalPosition().toPoint(), describeCell(l, e), plot_);
  } else {
    QToolTip::hideText();
  }
}

void RoutingHeatmapView::onMousePress(QMouseEvent* event) {
  int l = 0, e = 0;
  // Left of the cells, on a row's "L3" label: the row's random-routing switch.
  if (event->pos().x() < plot_->axisRect()->left()) {
    const int layer = int(std::floor(plot_->yAxis->pixelToCoord(event->pos().y()) + 0.5));
    // Straight to the session: the worker flips the layer in the engine's current set.
    if (layer >= 0 && layer < map_->data()->valueSize())
      session_->post(cmd::ToggleRandomLayer{layer});
    return;
  }
  if (!cellAt(event->pos(), &l, &e)) return;
  selectExpert(e == selected_expert_ ? -1 : e);
  Q_EMIT expertSelected(selected_expert_);
}

}  // namespace unipool::studio
