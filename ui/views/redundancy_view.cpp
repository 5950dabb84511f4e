#include "views/redundancy_view.h"

#include <qcustomplot.h>

#include <QFileDialog>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLocale>
#include <QMenu>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QTextBrowser>
#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>

#include "views/plot_style.h"
#include "views/redundancy_plots.h"

namespace unipool::studio {

namespace {

QString count(int64_t n) {
  if (n >= 1000000000) return QString::number(double(n) / 1e9, 'f', 2) + QStringLiteral(" B");
  if (n >= 1000000) return QString::number(double(n) / 1e6, 'f', 1) + QStringLiteral(" M");
  return QLocale().toString(qlonglong(n));
}

QTableWidget* makeTable(const QStringList& headers, QWidget* parent) {
  auto* t = new QTableWidget(0, int(headers.size()), parent);
  t->setHorizontalHeaderLabels(headers);
  t->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  t->horizontalHeader()->setStretchLastSection(true);
  t->setEditTriggers(QAbstractItemView::NoEditTriggers);
  t->verticalHeader()->setVisible(false);
  return t;
}

// The mean cosine across banks; with one bank (a UniPool model's shared pool), within it.
double meanCross(const RedundancyReport& r) {
  return r.banks.size() == 1 ? r.mean_within : r.mean_cross;
}

// The mean over banks of each expert's best cosine in another bank.
double meanBest(const RedundancyReport& r) {
  if (r.nearest.size() < 2) return 0.0;
  double sum = 0;
  for (const BankNearest& b : r.nearest) sum += b.mean_best;
  return sum / double(r.nearest.size());
}

void setRow(QTableWidget* t, int row, const QStringList& cells) {
  for (int c = 0; c < int(cells.size()); ++c) t->setItem(row, c, new QTableWidgetItem(cells[c]));
}

}  // namespace

RedundancyView::RedundancyView(QWidget* parent) : QWidget(parent) {
  status_ = new QLabel(tr("Open a MoE checkpoint (Mixtral, OLMoE, Qwen-MoE, DeepSeek, GPT-OSS or "
                          "ours; a .safetensors file or a sharded folder) to see whether its "
                          "experts in different layers are alike enough to share one pool."),
                       this);
  status_->setWordWrap(true);
  open_file_ = new QPushButton(tr("Open file..."), this);
  open_folder_ = new QPushButton(tr("Open folder..."), this);
  compare_ = new QPushButton(tr("Compare with..."), this);
  compare_->setToolTip(
      tr("Another checkpoint (a file or a folder; say a UniPool or vanilla model "
         "trained here) whose cross-layer similarity is drawn beside this one's"));
  compare_->setEnabled(false);
  rows_ = new QSpinBox(this);
  rows_->setRange(0, 1 << 20);
  rows_->setValue(32);
  rows_->setSpecialValueText(tr("all (exact)"));
  rows_->setToolTip(tr("Rows sampled from each expert matrix: the same rows in every expert"));
  progress_ = new QProgressBar(this);
  progress_->setRange(0, 1000);
  progress_->setVisible(false);
  cancel_ = new QPushButton(tr("Cancel"), this);
  cancel_->setVisible(false);
  auto* bar = new QHBoxLayout;
  bar->addWidget(open_file_);
  bar->addWidget(open_folder_);
  bar->addWidget(compare_);
  bar->addWidget(new QLabel(tr("rows sampled per matrix:"), this));
  bar->addWidget(rows_);
  bar->addWidget(progress_, 1);
  bar->addWidget(cancel_);
  bar->addStretch();

  summary_ = new QTextBrowser(this);
  pairs_ = makeTable({tr("layer"), tr("expert"), tr("layer"), tr("expert"), tr("cosine")}, this);
  nearest_ = makeTable({tr("layer"), tr("mean best cosine"), tr("closest pair")}, this);
  auto* tables = new QTabWidget(this);
  tables->addTab(pairs_, tr("Most similar pairs"));
  tables->addTab(nearest_, tr("Nearest in other layers"));
  auto* left = new QSplitter(Qt::Vertical, this);
  left->addWidget(summary_);
  left->addWidget(tables);

  similarity_ = new QCustomPlot(this);
  histogram_ = new QCustomPlot(this);
  norms_ = new QCustomPlot(this);
  routers_ = new QCustomPlot(this);
  for (QCustomPlot* p : {similarity_, histogram_, norms_, routers_}) {
    applyPlotStyle(p);
    p->setMinimumSize(220, 160);
  }
  auto* plots = new QWidget(this);
  auto* grid = new QGridLayout(plots);
  grid->setContentsMargins(0, 0, 0, 0);
  grid->addWidget(similarity_, 0, 0, 1, 3);
  grid->addWidget(histogram_, 1, 0);
  grid->addWidget(norms_, 1, 1);
  grid->addWidget(routers_, 1, 2);
  grid->setRowStretch(0, 3);
  grid->setRowStretch(1, 2);
  auto* split = new QSplitter(Qt::Horizontal, this);
  split->addWidget(left);
  split->addWidget(plots);
  split->setStretchFactor(1, 2);
  split->setSizes({380, 840});
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(status_);
  layout->addLayout(bar);
  layout->addWidget(split, 1);

  connect(open_file_, &QPushButton::clicked, this, [this] {
    const QString path =
        QFileDialog::getOpenFileName(this, tr("Open MoE checkpoint"), last_dir_,
                                     tr("safetensors (*.safetensors);;All files (*)"));
    if (!path.isEmpty()) open(path);
  });
  connect(open_folder_, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getExistingDirectory(
        this, tr("Open MoE checkpoint folder (with model.safetensors.index.json)"), last_dir_);
    if (!path.isEmpty()) open(path);
  });
  auto* compare_menu = new QMenu(compare_);
  compare_menu->addAction(tr("A file..."), this, [this] {
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Compare with"), last_dir_, tr("safetensors (*.safetensors);;All files (*)"));
    if (!path.isEmpty()) openReference(path);
  });
  compare_menu->addAction(tr("A folder..."), this, [this] {
    const QString path = QFileDialog::getExistingDirectory(this, tr("Compare with"), last_dir_);
    if (!path.isEmpty()) openReference(path);
  });
  compare_->setMenu(compare_menu);
  connect(&reference_analysis_, &MoeAnalysis::finished, this, &RedundancyView::showReference);
  connect(cancel_, &QPushButton::clicked, this, &RedundancyView::cancel);
  connect(similarity_, &QCustomPlot::mouseMove, this, [this](QMouseEvent* event) {
    const QString text = describeSimilarityAt(event->pos());
    if (text.isEmpty())
      QToolTip::hideText();
    else
      QToolTip::showText(event->globalPosition().toPoint(), text, similarity_);
  });
  connect(&analysis_, &MoeAnalysis::progress, this, [this](double done, const QString& what) {
    progress_->setValue(int(done * 1000));
    progress_->setFormat(tr("%1 (%p%)").arg(what));
  });
  connect(&analysis_, &MoeAnalysis::finished, this, &RedundancyView::show);
}

void RedundancyView::open(const QString& path) {
  last_dir_ = QFileInfo(path).absolutePath();
  status_->setText(tr("Opening %1 ...").arg(path));
  progress_->setValue(0);
  progress_->setFormat(tr("reading headers (%p%)"));
  progress_->setVisible(true);
  cancel_->setVisible(true);
  analysis_.start(path, rows_->value());
}

void RedundancyView::cancel() {
  analysis_.cancel();
  reference_analysis_.cancel();
}

void RedundancyView::openReference(const QString& path) {
  status_->setText(tr("Reading %1 to compare with ...").arg(path));
  reference_analysis_.start(path, rows_->value());
}

bool RedundancyView::reportFailure(const MoeReport& r, const QString& purpose) {
  if (r.error.isEmpty()) return false;
  // What was shown stays: a bad file or a Cancel must not wipe the last good report.
  status_->setText(r.error == kCancelled
                       ? tr("Cancelled opening %1%2.").arg(r.path, purpose)
                       : tr("Could not open %1%2: %3").arg(r.path, purpose, r.error));
  Q_EMIT failed(r.path, r.error);
  return true;
}

void RedundancyView::showReference(std::shared_ptr<const MoeReport> r) {
  if (reportFailure(*r, tr(" to compare with"))) return;
  reference_ = r;
  if (report_) {
    status_->setText(tr("Comparing %1 with %2").arg(report_->path, r->path));
    fillSummary(*report_);
    drawSimilarityHistogram(histogram_, report_->redundancy, &r->redundancy,
                            QString::fromStdString(r->architecture.family));
  }
  Q_EMIT referenceReady(r->path);
}

QString RedundancyView::describeSimilarityAt(const QPoint& pixel) const {
  if (!report_) return {};
  const RedundancyReport& r = report_->redundancy;
  const int n = int(r.banks.size()) * r.experts;
  const int col = int(std::floor(similarity_->xAxis->pixelToCoord(pixel.x()) + 0.5)),
            row = int(std::floor(similarity_->yAxis->pixelToCoord(pixel.y()) + 0.5));
  if (n == 0 || col < 0 || row < 0 || col * block_ >= n || row * block_ >= n) return {};
  const auto name = [&](int i) {
    return tr("%1 expert %2")
        .arg(QString::fromStdString(r.labels[size_t(i / r.experts)]))
        .arg(i % r.experts);
  };
  if (block_ == 1) {
    return tr("%1 ~ %2: cosine %3")
        .arg(name(row), name(col))
        .arg(r.similarity[size_t(row) * size_t(n) + size_t(col)], 0, 'f', 3);
  }
  const int last_row = std::min(n, (row + 1) * block_) - 1,
            last_col = std::min(n, (col + 1) * block_) - 1;
  return tr("%1 .. %2 ~ %3 .. %4: the block's most similar pair")
      .arg(name(row * block_), name(last_row), name(col * block_), name(last_col));
}

bool RedundancyView::busy() const { return analysis_.running(); }

QString RedundancyView::statusText() const { return status_->text(); }

QString RedundancyView::summaryText() const { return summary_->toPlainText(); }

void RedundancyView::show(std::shared_ptr<const MoeReport> r) {
  progress_->setVisible(false);
  cancel_->setVisible(false);
  if (reportFailure(*r, QString())) return;
  report_ = r;
  const RedundancyReport& s = r->redundancy;
  status_->setText(tr("%1: %2, %3 file(s), %4 GB; %5 MB read in %6 s")
                       .arg(r->path, QString::fromStdString(r->architecture.family))
                       .arg(r->files)
                       .arg(double(r->bytes) / 1e9, 0, 'f', 2)
                       .arg(double(s.bytes_read) / 1e6, 0, 'f', 1)
                       .arg(s.seconds + r->seconds_to_layout, 0, 'f', 1));
  fillSummary(*r);
  fillTables(*r);
  block_ = drawSimilarity(similarity_, s, r->map);
  compare_->setEnabled(true);
  drawSimilarityHistogram(
      histogram_, s, reference_ ? &reference_->redundancy : nullptr,
      reference_ ? QString::fromStdString(reference_->architecture.family) : QString());
  drawExpertNorms(norms_, s);
  drawRouterSimilarity(routers_, s);
  Q_EMIT reportReady(r->path);
}

void RedundancyView::fillSummary(const MoeReport& r) {
  const MoeArchitecture& a = r.architecture;
  const RedundancyReport& s = r.redundancy;
  QString html = tr("<h3>%1</h3>").arg(QString::fromStdString(a.family).toHtmlEscaped());
  html += tr("<p>%1 layers: %2 MoE, %3 dense. %4 routed experts per %5%6%7.<br>"
             "hidden %8, expert hidden %9%10</p>")
              .arg(a.n_layers)
              .arg(a.moe_layers)
              .arg(a.dense_layers.size())
              .arg(a.experts_per_bank)
              .arg(a.pool_shared ? tr("shared pool") : tr("layer"))
              .arg(a.shared_per_layer > 0 ? tr(" + %1 shared").arg(a.shared_per_layer) : QString())
              .arg(a.top_k > 0 ? tr(", top-%1").arg(a.top_k) : QString())
              .arg(a.hidden)
              .arg(a.expert_hidden)
              .arg(a.shared_hidden > 0 ? tr(", shared expert hidden %1").arg(a.shared_hidden)
                                       : QString());
  QStringList dtypes;
  for (const auto& [dtype, n] : a.dtype_params)
    dtypes << QStringLiteral("%1 %2").arg(QString::fromStdString(dtype), count(n));
  html += tr("<p>Parameters: %1 in all, %2 in routed experts%3 (%4).</p>")
              .arg(count(a.total_params), count(a.routed_params),
                   a.active_params > 0 ? tr(", %1 active per token").arg(count(a.active_params))
                                       : QString(),
                   dtypes.join(QStringLiteral(", ")));
  html += tr("<p><b>UniPool view:</b> the same budget as one pool of %1 experts shared by every "
             "MoE layer. The paper's reduced pools (41.6-66.7% of the budget) would hold "
             "%2-%3 experts and save %4-%5 parameters.</p>")
              .arg(r.pool.pool_experts)
              .arg(r.pool.reduced_low)
              .arg(r.pool.reduced_high)
              .arg(count(r.pool.params_saved_high), count(r.pool.params_saved_low));
  html += s.exact ? tr("<p>Similarity: cosine of the flattened weights, every row read (exact).")
                  : tr("<p>Similarity: cosine of the flattened weights, from the same %1 of %2 "
                       "rows of every matrix (%3% of each expert); standard error %4 (half the "
                       "difference of two random halves of the sample).")
                        .arg(s.rows_sampled.empty() ? 0 : s.rows_sampled[0])
                        .arg(s.rows_total.empty() ? 0 : s.rows_total[0])
                        .arg(100.0 * double(s.values_sampled) /
                                 double(std::max<int64_t>(1, s.values_total)),
                             0, 'f', 2)
                        .arg(s.standard_error, 0, 'f', 4);
  html += tr(" Mean cosine within a layer %1, across layers %2.</p>")
              .arg(s.mean_within, 0, 'f', 3)
              .arg(s.mean_cross, 0, 'f', 3);
  if (reference_) {
    const RedundancyReport& t = reference_->redundancy;
    html += tr("<p><b>Compared with</b> %1 (%2): mean cosine across layers %3 here, %4 there; "
               "each expert's best match in another layer %5 here, %6 there (means).</p>")
                .arg(reference_->path.toHtmlEscaped(),
                     QString::fromStdString(reference_->architecture.family).toHtmlEscaped())
                .arg(meanCross(s), 0, 'f', 3)
                .arg(meanCross(t), 0, 'f', 3)
                .arg(meanBest(s), 0, 'f', 3)
                .arg(meanBest(t), 0, 'f', 3);
  }
  for (const std::string& note : a.notes)
    html += QStringLiteral("<p><i>%1</i></p>").arg(QString::fromStdString(note).toHtmlEscaped());
  for (const std::string& note : s.notes)
    html += QStringLiteral("<p><i>%1</i></p>").arg(QString::fromStdString(note).toHtmlEscaped());
  summary_->setHtml(html);
}

void RedundancyView::fillTables(const MoeReport& r) {
  const RedundancyReport& s = r.redundancy;
  const auto label = [&](int bank) { return QString::fromStdString(s.labels[size_t(bank)]); };
  pairs_->setRowCount(int(s.top_pairs.size()));
  for (int i = 0; i < int(s.top_pairs.size()); ++i) {
    const ExpertPair& p = s.top_pairs[size_t(i)];
    setRow(pairs_, i,
           {label(p.bank_a), QString::number(p.expert_a), label(p.bank_b),
            QString::number(p.expert_b), QString::number(p.cosine, 'f', 3)});
  }
  const bool cross = s.banks.size() > 1;
  nearest_->setRowCount(cross ? int(s.nearest.size()) : 0);
  for (int b = 0; cross && b < int(s.nearest.size()); ++b) {
    const ExpertPair& p = s.nearest[size_t(b)].best;
    setRow(nearest_, b,
           {label(b), QString::number(s.nearest[size_t(b)].mean_best, 'f', 3),
            tr("expert %1 ~ %2 expert %3 (%4)")
                .arg(p.expert_a)
                .arg(label(p.bank_b))
                .arg(p.expert_b)
                .arg(p.cosine, 0, 'f', 3)});
  }
}

}  // namespace unipool::studio
