#include "views/checkpoint_inspector_view.h"

#include <qcustomplot.h>

#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLocale>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QTextBrowser>
#include <QVBoxLayout>
#include <cmath>

#include "unipool/architecture.h"
#include "views/plot_style.h"
#include "views/routing_cells.h"

namespace unipool::studio {

namespace {

QString thousands(int64_t v) { return QLocale().toString(qlonglong(v)); }

}  // namespace

CheckpointInspectorView::CheckpointInspectorView(QWidget* parent) : QWidget(parent) {
  status_ = new QLabel(tr("File > Open a .safetensors checkpoint to look inside it."), this);
  status_->setWordWrap(true);
  summary_ = new QTextBrowser(this);
  tensors_ = new QTableWidget(0, 4, this);
  tensors_->setHorizontalHeaderLabels({tr("tensor"), tr("dtype"), tr("shape"), tr("elements")});
  tensors_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  for (int column = 1; column < 4; ++column)
    tensors_->horizontalHeader()->setSectionResizeMode(column, QHeaderView::ResizeToContents);
  tensors_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  tensors_->verticalHeader()->setVisible(false);
  tensors_->setTextElideMode(Qt::ElideMiddle);  // "layers.3.attn.q_proj.weight" keeps both ends

  norms_ = new QCustomPlot(this);
  similarity_ = new QCustomPlot(this);
  routing_ = new QCustomPlot(this);
  for (QCustomPlot* p : {norms_, similarity_, routing_}) {
    applyPlotStyle(p);
    p->setMinimumSize(260, 180);
  }
  norms_->xAxis->setLabel(tr("expert"));
  setIdTicks(norms_->xAxis);
  norms_->yAxis->setLabel(tr("weight norm"));
  similarity_->xAxis->setLabel(tr("expert"));
  similarity_->yAxis->setLabel(tr("expert (cosine of flattened weights)"));
  setIdTicks(similarity_->xAxis);
  setIdTicks(similarity_->yAxis);
  routing_->xAxis->setLabel(tr("expert (routing of built-in validation text)"));
  setIdTicks(routing_->xAxis);
  routing_->yAxis->setLabel(tr("layer"));

  auto* left = new QSplitter(Qt::Vertical, this);
  left->addWidget(summary_);
  left->addWidget(tensors_);
  auto* plots = new QWidget(this);
  auto* grid = new QGridLayout(plots);
  grid->setContentsMargins(0, 0, 0, 0);
  grid->addWidget(norms_, 0, 0);
  grid->addWidget(similarity_, 0, 1);
  grid->addWidget(routing_, 1, 0, 1, 2);
  auto* split = new QSplitter(Qt::Horizontal, this);
  split->addWidget(left);
  split->addWidget(plots);
  split->setStretchFactor(1, 2);
  split->setSizes({420, 800});
  auto* layout = new QVBoxLayout(this);
  redundancy_ = new QPushButton(tr("Cross-layer redundancy of this checkpoint..."), this);
  redundancy_->setToolTip(
      tr("Compare its experts across layers in the Redundancy tab, as for "
         "any downloaded MoE checkpoint"));
  redundancy_->setEnabled(false);
  connect(redundancy_, &QPushButton::clicked, this,
          [this] { Q_EMIT redundancyRequested(report_.path); });
  auto* top = new QHBoxLayout;
  top->addWidget(status_, 1);
  top->addWidget(redundancy_);
  layout->addLayout(top);
  layout->addWidget(split, 1);

  connect(&analysis_, &CheckpointAnalysis::finished, this, &CheckpointInspectorView::showReport);
}

void CheckpointInspectorView::open(const QString& path) {
  // An analysis still running is superseded: only the newest file is shown, and the window
  // never waits here.
  status_->setText(tr("Reading %1 ...").arg(path));
  analysis_.start(path);
}

QString CheckpointInspectorView::summaryText() const { return summary_->toPlainText(); }

void CheckpointInspectorView::expect(const QString& path) {
  status_->setText(tr("Reading %1 ...").arg(path));
}

void CheckpointInspectorView::showReport(const CheckpointReport& r) {
  if (!r.error.isEmpty()) {
    // Keep showing the last good report: a bad file must not wipe what the user was reading.
    status_->setText(tr("Could not open %1: %2").arg(r.path, r.error));
    Q_EMIT failed(r.path, r.error);
    return;
  }
  report_ = r;
  redundancy_->setEnabled(true);
  const ModelConfig& c = r.info.config;
  const ParamCounts& p = r.params;
  status_->setText(tr("%1: step %2%3")
                       .arg(r.path)
                       .arg(r.info.step)
                       .arg(r.info.has_train_state ? tr(", with training state (resumable)")
                                                   : tr(", model only")));
  const QString arch = QString::fromStdString(architecture_title(architecture_of(c)));
  QString html;
  html += tr("<h3>%1</h3>").arg(arch);
  html += tr("<p>%1 layers, d_model %2, %3 heads (%4 kv), expert hidden %5<br>"
             "%6 pool(s) of %7 experts shared by %8 layer(s) each: %9 experts in all<br>"
             "router %10 (c = %11), top-%12, balance %13 (coef %14)</p>")
              .arg(c.n_layers)
              .arg(c.d_model)
              .arg(c.n_heads)
              .arg(c.n_kv_heads)
              .arg(c.expert_hidden)
              .arg(c.n_groups())
              .arg(c.experts_per_group)
              .arg(c.layers_per_group)
              .arg(c.n_experts())
              .arg(QString::fromStdString(c.router))
              .arg(c.router_c, 0, 'f', 3)
              .arg(c.top_k)
              .arg(QString::fromStdString(c.balance))
              .arg(c.aux_coef);
  html += tr("<p>Parameters: %1 in all, %2 in experts, %3 active per token.<br>"
             "Expert budget: <b>%4%</b> of the equivalent vanilla MoE (%7 experts in each of "
             "%5 layers = %6 parameters).</p>")
              .arg(thousands(p.total))
              .arg(thousands(p.expert))
              .arg(thousands(p.active_per_token))
              .arg(100.0 * p.budget_ratio, 0, 'f', 1)
              .arg(c.n_layers)
              .arg(thousands(p.vanilla_budget))
              .arg(kVanillaExpertsPerLayer);
  if (!r.validation.routing.empty()) {
    const RoutingSummary s = summarize(r.validation.routing);
    html += tr("<p>On %1 bytes of built-in validation text: CE %2 nats/byte; imbalance %3, "
               "CV %4, load entropy %5, dead experts %6, reuse %7.</p>")
                .arg(r.validation.n_targets)
                .arg(r.validation.loss, 0, 'f', 3)
                .arg(s.imbalance, 0, 'f', 2)
                .arg(s.cv, 0, 'f', 2)
                .arg(s.load_entropy, 0, 'f', 3)
                .arg(s.dead_experts)
                .arg(s.reuse, 0, 'f', 2);
  }
  summary_->setHtml(html);

  tensors_->setRowCount(int(r.info.tensors.size()));
  for (int i = 0; i < int(r.info.tensors.size()); ++i) {
    const TensorInfo& t = r.info.tensors[size_t(i)];
    QStringList dims;
    int64_t elements = 1;
    for (int64_t d : t.shape) {
      dims << QString::number(d);
      elements *= d;
    }
    auto* name = new QTableWidgetItem(QString::fromStdString(t.name));
    name->setToolTip(name->text());
    tensors_->setItem(i, 0, name);
    tensors_->setItem(i, 1, new QTableWidgetItem(QString::fromStdString(t.dtype)));
    tensors_->setItem(i, 2, new QTableWidgetItem(dims.join(QStringLiteral(" x "))));
    tensors_->setItem(i, 3, new QTableWidgetItem(thousands(elements)));
  }

  const int N = int(r.expert_norms.size());
  norms_->clearPlottables();
  auto* bars = new QCPBars(norms_->xAxis, norms_->yAxis);
  QVector<double> keys(N), values(N);
  for (int e = 0; e < N; ++e) {
    keys[e] = e;
    values[e] = r.expert_norms[size_t(e)];
  }
  bars->setData(keys, values, true);
  bars->setPen(Qt::NoPen);
  bars->setBrush(QColor("#4e79a7"));
  norms_->rescaleAxes();
  norms_->yAxis->setRangeLower(0);
  norms_->replot();

  similarity_->clearPlottables();
  auto* sim = new QCPColorMap(similarity_->xAxis, similarity_->yAxis);
  sim->setInterpolate(false);
  sim->data()->setSize(N, N);
  sim->data()->setRange(QCPRange(0, N - 1), QCPRange(0, N - 1));
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) sim->data()->setCell(i, j, r.expert_similarity[size_t(i * N + j)]);
  sim->setGradient(divergingGradient());
  attachColorScale(similarity_, sim, tr("cosine"));
  sim->setDataRange(QCPRange(-1, 1));
  similarity_->xAxis->setRange(-0.5, N - 0.5);
  similarity_->yAxis->setRange(-0.5, N - 0.5);
  similarity_->replot();

  routing_->clearPlottables();
  const RoutingCounts& rc = r.validation.routing;
  auto* map = new QCPColorMap(routing_->xAxis, routing_->yAxis);
  map->setInterpolate(false);
  map->setGradient(viridisGradient());
  map->data()->setSize(N, c.n_layers);
  map->data()->setRange(QCPRange(0, N - 1), QCPRange(0, c.n_layers - 1));
  double top = 0;
  for (int l = 0; l < c.n_layers; ++l)
    for (int e = 0; e < N; ++e) {
      const double v = routingCellValue(rc, l, e, false);
      map->data()->setCell(e, l, v);
      if (!std::isnan(v)) top = std::max(top, v);
    }
  attachColorScale(routing_, map, tr("share"));
  map->setDataRange(QCPRange(0, top > 0 ? top : 1));
  setLayerTicks(routing_->yAxis, c.n_layers);
  routing_->yAxis->setRangeReversed(true);
  routing_->xAxis->setRange(-0.5, N - 0.5);
  routing_->yAxis->setRange(-0.5, c.n_layers - 0.5);
  routing_->replot();
  Q_EMIT reportReady(r.path);
}

}  // namespace unipool::studio
