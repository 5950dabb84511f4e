#include "views/loss_curves_view.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>
#include <QVBoxLayout>
#include <cmath>

#include "session/run_session.h"
#include "views/plot_style.h"

namespace unipool::studio {

LossCurvesView::LossCurvesView(QWidget* parent) : QWidget(parent) {
  plot_ = new QCustomPlot(this);
  applyPlotStyle(plot_);
  plot_->setMinimumSize(320, 180);
  plot_->xAxis->setLabel(tr("step"));
  plot_->yAxis->setLabel(tr("cross-entropy (nats/byte)"));
  plot_->yAxis2->setVisible(true);
  plot_->yAxis2->setLabel(tr("aux loss"));
  plot_->legend->setVisible(true);
  plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);

  smoothing_slider_ = new QSlider(Qt::Horizontal, this);
  smoothing_slider_->setRange(0, 99);
  smoothing_slider_->setValue(int(smoothing_ * 100));
  smoothing_slider_->setToolTip(tr("Exponential moving average of the training curves"));
  connect(smoothing_slider_, &QSlider::valueChanged, this,
          [this](int v) { setSmoothing(v / 100.0); });
  log_box_ = new QCheckBox(tr("Log scale"), this);
  connect(log_box_, &QCheckBox::toggled, this, &LossCurvesView::setLogScale);

  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("Smoothing"), this));
  bar->addWidget(smoothing_slider_, 1);
  bar->addWidget(log_box_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(bar);
  layout->addWidget(plot_, 1);
}

void LossCurvesView::addSession(RunSession* session, const QColor& color) {
  runs_.push_back({session, color});
  connect(&session->history(), &RunHistory::changed, this, &LossCurvesView::draw);
  draw();
}

void LossCurvesView::setSmoothing(double weight) {
  smoothing_ = std::clamp(weight, 0.0, 0.99);
  if (smoothing_slider_->value() != int(std::lround(smoothing_ * 100))) {
    const QSignalBlocker block(smoothing_slider_);
    smoothing_slider_->setValue(int(std::lround(smoothing_ * 100)));
  }
  draw();
}

bool LossCurvesView::logScale() const { return log_box_->isChecked(); }

void LossCurvesView::setLogScale(bool on) {
  if (log_box_->isChecked() != on) {
    log_box_->setChecked(on);  // comes back here through toggled
    return;
  }
  const auto type = on ? QCPAxis::stLogarithmic : QCPAxis::stLinear;
  for (QCPAxis* axis : {plot_->yAxis, plot_->yAxis2}) {
    axis->setScaleType(type);
    if (on)
      axis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    else
      axis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  }
  draw();
}

QVector<double> LossCurvesView::drawnTrainCe(int run) const {
  QVector<double> values;
  if (run < 0 || run * 3 >= plot_->graphCount()) return values;
  for (auto it = plot_->graph(run * 3)->data()->constBegin();
       it != plot_->graph(run * 3)->data()->constEnd(); ++it)
    values.push_back(it->value);
  return values;
}

void LossCurvesView::draw() {
  plot_->clearGraphs();
  plot_->clearItems();
  marker_count_ = 0;
  const bool several = runs_.size() > 1;
  double ymin = 1e300, ymax = -1e300;
  for (const Run& run : runs_) {
    const RunHistory& h = run.session->history();
    const QString prefix = several ? run.session->name() + QStringLiteral(": ") : QString();
    // Graph order per run: train CE, validation CE, aux (drawnTrainCe relies on it).
    QCPGraph* train = plot_->addGraph(plot_->xAxis, plot_->yAxis);
    QCPGraph* valid = plot_->addGraph(plot_->xAxis, plot_->yAxis);
    QCPGraph* aux = plot_->addGraph(plot_->xAxis, plot_->yAxis2);
    train->setName(prefix + tr("train CE"));
    valid->setName(prefix + tr("validation CE"));
    aux->setName(prefix + tr("aux"));
    train->setPen(QPen(run.color, 1.6));
    valid->setPen(QPen(run.color.darker(150), 1.4, Qt::DashLine));
    valid->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
    aux->setPen(QPen(run.color.lighter(140), 1.0, Qt::DotLine));

    QVector<double> steps, ce, aux_v;
    steps.reserve(int(h.points().size()));
    double ema_ce = 0, ema_aux = 0;
    bool first = true;
    int64_t previous_step = 0;
    for (const StepPoint& p : h.points()) {
      if (!p.applied || !std::isfinite(p.ce)) continue;
      // Per step, not per point: once old points are merged in pairs, one point stands for
      // two steps and must decay the average twice as much.
      const double gap = first ? 1.0 : double(std::max<int64_t>(1, p.step - previous_step));
      const double keep = std::pow(smoothing_, gap);
      ema_ce = first ? p.ce : keep * ema_ce + (1 - keep) * p.ce;
      ema_aux = first ? p.aux : keep * ema_aux + (1 - keep) * p.aux;
      previous_step = p.step;
      first = false;
      steps.push_back(double(p.step));
      ce.push_back(ema_ce);
      aux_v.push_back(ema_aux);
      ymin = std::min(ymin, ema_ce);
      ymax = std::max(ymax, ema_ce);
    }
    train->setData(steps, ce, true);
    aux->setData(steps, aux_v, true);
    QVector<double> vs, vce;
    for (const ValidationPoint& v : h.validation()) {
      vs.push_back(double(v.step));
      vce.push_back(v.ce);
      ymin = std::min(ymin, v.ce);
      ymax = std::max(ymax, v.ce);
    }
    valid->setData(vs, vce, true);

    for (const ChangeEvent& e : h.changes()) {
      auto* line = new QCPItemStraightLine(plot_);
      line->point1->setCoords(double(e.step), 0);
      line->point2->setCoords(double(e.step), 1);
      line->setPen(QPen(e.kind == ChangeEvent::Halted ? QColor(200, 0, 0) : QColor(90, 90, 90), 1,
                        Qt::DashDotLine));
      auto* label = new QCPItemText(plot_);
      label->position->setTypeX(QCPItemPosition::ptPlotCoords);
      label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
      // Below the legend (top right), staggered so neighbouring markers do not overlap.
      label->position->setCoords(double(e.step), 0.32 + 0.06 * (marker_count_ % 4));
      label->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
      label->setText(QStringLiteral(" ") + prefix + e.text);
      label->setColor(QColor(60, 60, 60));
      label->setFont(QFont(font().family(), 8));
      ++marker_count_;
    }
    drawLockPhases(run.session->state().lock, prefix);
  }
  plot_->xAxis->rescale();
  // Steps start at 0; a run with one point (or none) still gets a readable axis.
  const double last = std::max(plot_->xAxis->range().upper, 10.0);
  plot_->xAxis->setRange(-0.02 * last, last);  // a point at step 0 stays whole
  // A marker before the first point (say, "opened at step N") must stay on the plot.
  double first_marker = plot_->xAxis->range().lower;
  for (const Run& run : runs_)
    for (const ChangeEvent& e : run.session->history().changes())
      first_marker = std::min(first_marker, double(e.step));
  if (first_marker < plot_->xAxis->range().lower) plot_->xAxis->setRangeLower(first_marker - 0.5);
  plot_->yAxis2->rescale();
  if (ymax >= ymin) {
    const double pad = std::max(0.05, (ymax - ymin) * 0.05);
    plot_->yAxis->setRange(logScale() ? ymin / 1.1 : ymin - pad, ymax + pad);
  }
  requestReplot(plot_);
}

void LossCurvesView::drawLockPhases(const LockStatus& lock, const QString& prefix) {
  if (!lock.enabled) return;
  // The band: full pool, fade, locked (SPEC section 8), behind the curves.
  const double end = 1e12;  // clipped to the axis: the last phase runs on
  struct Band {
    double from, to;
    QColor color;
    QString name;
  };
  const Band bands[] = {
      {0, double(lock.freeze_step), QColor(78, 121, 167, 28), tr("full pool")},
      {double(lock.freeze_step), double(lock.lock_step), QColor(242, 142, 43, 34), tr("fade")},
      {double(lock.lock_step), end, QColor(120, 120, 120, 34), tr("locked")}};
  for (const Band& b : bands) {
    if (b.to <= b.from) continue;
    auto* rect = new QCPItemRect(plot_);
    rect->setLayer(QStringLiteral("background"));
    rect->topLeft->setTypeY(QCPItemPosition::ptAxisRectRatio);
    rect->bottomRight->setTypeY(QCPItemPosition::ptAxisRectRatio);
    rect->topLeft->setCoords(b.from, 0);
    rect->bottomRight->setCoords(b.to, 1);
    rect->setPen(Qt::NoPen);
    rect->setBrush(b.color);
    auto* name = new QCPItemText(plot_);
    name->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    name->position->setCoords(b.from, 0.97);
    name->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
    name->setText(QStringLiteral(" ") + prefix + b.name);
    name->setColor(b.color.darker(300));
    name->setFont(QFont(font().family(), 8));
  }
  // The reference loss (validation at the freeze) and the fail-stop line above it.
  if (std::isfinite(lock.reference_loss)) {
    auto line = [&](double y, const QColor& color, const QString& text, double at) {
      auto* l = new QCPItemStraightLine(plot_);
      l->point1->setCoords(0, y);
      l->point2->setCoords(1, y);
      l->setPen(QPen(color, 1, Qt::DotLine));
      auto* t = new QCPItemText(plot_);
      t->position->setTypeX(QCPItemPosition::ptAxisRectRatio);
      t->position->setCoords(at, y);
      t->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
      t->setText(text);
      t->setColor(color);
      t->setFont(QFont(font().family(), 8));
    };
    line(lock.reference_loss, QColor(60, 60, 60),
         tr("reference %1").arg(lock.reference_loss, 0, 'f', 3), 0.01);
    line(lock.fail_line, QColor(200, 0, 0), tr("fail-stop line"), 0.45);  // apart from the other
  }
}

}  // namespace unipool::studio
