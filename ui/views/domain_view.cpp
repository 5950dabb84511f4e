#include "views/domain_view.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>
#include <cmath>
#include <limits>

#include "session/run_session.h"
#include "views/plot_style.h"

namespace unipool::studio {

DomainView::DomainView(RunSession* session, QWidget* parent) : QWidget(parent), session_(session) {
  plot_ = new QCustomPlot(this);
  applyPlotStyle(plot_);
  plot_->setMinimumSize(360, 200);
  plot_->xAxis->setLabel(tr("pool expert (global id)"));
  setIdTicks(plot_->xAxis);
  layer_box_ = new QComboBox(this);
  measure_box_ = new QComboBox(this);
  measure_box_->addItems({tr("Share of the domain's choices"), tr("Lift over average")});
  caption_ = new QLabel(this);
  caption_->setWordWrap(true);
  auto* bar = new QHBoxLayout;
  bar->addWidget(layer_box_);
  bar->addWidget(measure_box_);
  bar->addWidget(caption_, 1);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(bar);
  layout->addWidget(plot_, 1);
  connect(layer_box_, &QComboBox::activated, this, [this](int i) { setLayer(i - 1); });
  connect(measure_box_, &QComboBox::activated, this, [this](int i) { setLift(i == 1); });
  connect(session_, &RunSession::updated, this, &DomainView::refresh);
  connect(session_, &RunSession::stateChanged, this, &DomainView::refresh);
  refresh();
}

void DomainView::setLayer(int layer) {
  layer_ = layer;
  draw();
}

void DomainView::setLift(bool lift) {
  lift_ = lift;
  measure_box_->setCurrentIndex(lift ? 1 : 0);
  draw();
}

void DomainView::refresh() {
  // Since the start of the run: specialisation needs more tokens than one window has.
  counts_ = session_->history().cumulative();
  const int L = counts_.empty() ? session_->state().config.n_layers : counts_.n_layers;
  if (layer_box_->count() != L + 1) {
    layer_box_->clear();
    layer_box_->addItem(tr("All layers (pooled)"));
    for (int l = 0; l < L; ++l) layer_box_->addItem(tr("Layer %1").arg(l));
    if (layer_ >= L) layer_ = -1;
    layer_box_->setCurrentIndex(layer_ + 1);
  }
  draw();
}

double DomainView::value(int d, int e) const {
  const RoutingCounts& c = counts_;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (c.empty() || c.n_domains <= 0 || d < 0 || d >= c.n_domains || e < 0 || e >= c.n_experts())
    return nan;
  const int Mg = c.experts_per_group, G = c.layers_per_group;
  const int group = e / Mg, local = e % Mg;
  const size_t per_domain = size_t(c.n_layers) * size_t(Mg);
  // Choices of expert e (and of all experts) by this domain's tokens over the chosen layers.
  double hits = 0, domain_total = 0, all_hits = 0, all_total = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    if (layer_ >= 0 && l != layer_) continue;
    const bool reaches = l / G == group;
    for (int i = 0; i < Mg; ++i) {
      const size_t cell = size_t(l) * size_t(Mg) + size_t(i);
      for (int dd = 0; dd < c.n_domains; ++dd) {
        const double v = double(c.domain_counts[size_t(dd) * per_domain + cell]);
        all_total += v;
        if (dd == d) domain_total += v;
        if (reaches && i == local) {
          all_hits += v;
          if (dd == d) hits += v;
        }
      }
    }
  }
  if (layer_ >= 0 && layer_ / G != group) return nan;  // not in this layer's pool
  if (domain_total <= 0) return nan;
  const double share = hits / domain_total;
  if (!lift_) return share;
  const double overall = all_total > 0 ? all_hits / all_total : 0;
  return overall > 0 ? share / overall : nan;
}

void DomainView::draw() {
  plot_->clearPlottables();
  const RoutingCounts& c = counts_;
  const auto& names = session_->state().domain_names;
  if (c.empty() || c.n_domains <= 0) {
    caption_->setText(
        tr("Domains are known only for the built-in corpus: train on it to see "
           "which experts specialise."));
    requestReplot(plot_);
    return;
  }
  const int D = c.n_domains, N = c.n_experts();
  auto* map = new QCPColorMap(plot_->xAxis, plot_->yAxis);
  map->setInterpolate(false);
  map->setGradient(viridisGradient());
  map->data()->setSize(N, D);
  map->data()->setRange(QCPRange(0, N - 1), QCPRange(0, D - 1));
  double top = 0;
  for (int d = 0; d < D; ++d)
    for (int e = 0; e < N; ++e) {
      const double v = value(d, e);
      map->data()->setCell(e, d, v);
      if (!std::isnan(v)) top = std::max(top, v);
    }
  attachColorScale(plot_, map, lift_ ? tr("lift over average") : tr("share of domain's choices"));
  map->setDataRange(QCPRange(0, top > 0 ? top : 1));
  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  for (int d = 0; d < D; ++d)
    ticker->addTick(d, d < int(names.size()) ? QString::fromStdString(names[size_t(d)])
                                             : tr("domain %1").arg(d));
  plot_->yAxis->setTicker(ticker);
  plot_->yAxis->setRangeReversed(true);
  plot_->xAxis->setRange(-0.5, N - 0.5);
  plot_->yAxis->setRange(-0.5, D - 0.5);
  int64_t tokens = 0;
  for (int64_t t : c.domain_tokens) tokens += t;
  caption_->setText(tr("%1 labelled tokens since the run started; colour: %2 (max %3)")
                        .arg(tokens)
                        .arg(lift_ ? tr("lift") : tr("share"))
                        .arg(top, 0, 'f', 2));
  requestReplot(plot_);
}

}  // namespace unipool::studio
