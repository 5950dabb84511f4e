#include "views/downloaded_model_view.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>
#include <utility>

#include "views/downloaded_plots.h"
#include "views/plot_style.h"

namespace unipool::studio {

namespace {

QCustomPlot* makePlot(QWidget* parent) {
  auto* plot = new QCustomPlot(parent);
  applyPlotStyle(plot);
  plot->setMinimumHeight(260);
  return plot;
}

// Labelled box with a combo box on top of a plot.
QWidget* withChooser(QWidget* parent, const QString& label, QComboBox* box, QCustomPlot* plot,
                     QComboBox* second = nullptr) {
  auto* w = new QWidget(parent);
  auto* row = new QHBoxLayout;
  row->addWidget(new QLabel(label, w));
  row->addWidget(box);
  if (second) row->addWidget(second);
  row->addStretch();
  auto* layout = new QVBoxLayout(w);
  layout->addLayout(row);
  layout->addWidget(plot, 1);
  return w;
}

}  // namespace

DownloadedModelView::DownloadedModelView(QWidget* parent)
    : QWidget(parent), model_(new DownloadedModel(this)) {
  status_ = new QLabel(tr("Open a downloaded MoE model (a folder with config.json, safetensors "
                          "and tokenizer.json: Mixtral, OLMoE, Qwen2/3-MoE, DeepSeek-V2/V3) to "
                          "see how it routes your text. Your training run stays as it is."),
                       this);
  status_->setWordWrap(true);
  summary_ = new QLabel(this);
  summary_->setWordWrap(true);
  progress_ = new QProgressBar(this);
  progress_->setRange(0, 1000);
  open_ = new QPushButton(tr("Open model folder..."), this);
  route_ = new QPushButton(tr("Route this text"), this);
  text_file_ = new QPushButton(tr("Text file..."), this);
  domains_button_ = new QPushButton(tr("Domains folder..."), this);
  domains_button_->setToolTip(tr("A folder of .txt files, one domain each"));
  probe_ = new QPushButton(tr("Probe on this text"), this);
  probe_->setToolTip(tr("Random routing in each MoE layer and from each layer down, in the "
                        "Experiments tab"));
  cancel_ = new QPushButton(tr("Cancel"), this);
  text_ = new QPlainTextEdit(this);
  text_->setPlaceholderText(tr("Type or paste a text, or open a text file"));
  text_->setPlainText(tr("The quick brown fox jumps over the lazy dog. def add(a, b):\n"
                         "    return a + b\nDie Katze schläft. 3.14159 + 2.71828 = 5.85987"));
  heatmap_ = makePlot(this);
  coactivation_ = makePlot(this);
  domain_plot_ = makePlot(this);
  tokens_ = new QTableWidget(this);
  tokens_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  pair_layer_ = new QComboBox(this);
  domain_box_ = new QComboBox(this);
  domain_layer_ = new QComboBox(this);
  tabs_ = new QTabWidget(this);
  tabs_->addTab(heatmap_, tr("Routing"));
  tabs_->addTab(tokens_, tr("Tokens"));
  tabs_->addTab(withChooser(this, tr("Layer"), pair_layer_, coactivation_), tr("Co-activation"));
  tabs_->addTab(withChooser(this, tr("Domain"), domain_box_, domain_plot_, domain_layer_),
                tr("Domains"));

  auto* buttons = new QHBoxLayout;
  for (QPushButton* b : {open_, route_, text_file_, domains_button_, probe_}) buttons->addWidget(b);
  buttons->addStretch();
  auto* bar = new QHBoxLayout;
  bar->addWidget(progress_, 1);
  bar->addWidget(cancel_);
  auto* left = new QWidget(this);
  auto* left_layout = new QVBoxLayout(left);
  left_layout->addWidget(summary_);
  left_layout->addWidget(text_, 1);
  auto* split = new QSplitter(Qt::Horizontal, this);
  split->addWidget(left);
  split->addWidget(tabs_);
  split->setStretchFactor(1, 3);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(status_);
  layout->addLayout(buttons);
  layout->addLayout(bar);
  layout->addWidget(split, 1);
  setBusy(false);

  connect(open_, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Downloaded model folder"));
    if (!dir.isEmpty()) open(dir);
  });
  connect(route_, &QPushButton::clicked, this, [this] { routeText(text_->toPlainText()); });
  connect(text_file_, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, tr("Text file"));
    if (path.isEmpty()) return;
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
      Q_EMIT failed(tr("Text file"), tr("%1: %2").arg(path, f.errorString()));
      return;
    }
    text_->setPlainText(QString::fromUtf8(f.read(1 << 20)));  // 1 MiB: far past 4,096 tokens
    routeText(text_->toPlainText());
  });
  connect(domains_button_, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Folder of .txt files"));
    if (!dir.isEmpty()) routeDomains(dir);
  });
  connect(probe_, &QPushButton::clicked, this, [this] {
    if (!routing_ || routing_->ids.size() < 2) return;
    // Windows of up to 128 tokens: a short text still makes one window.
    const int seq = int(std::min<size_t>(128, routing_->ids.size() - 1));
    Q_EMIT probeRequested(model_->model(), routing_->ids,
                          QString::fromStdString(model_->info().family), seq);
  });
  connect(cancel_, &QPushButton::clicked, this, &DownloadedModelView::cancel);
  connect(pair_layer_, &QComboBox::currentIndexChanged, this, [this] { redrawCoactivation(); });
  connect(domain_box_, &QComboBox::currentIndexChanged, this, [this] { redrawDomain(); });
  connect(domain_layer_, &QComboBox::currentIndexChanged, this, [this] { redrawDomain(); });
  connect(model_, &DownloadedModel::progress, this,
          [this](double fraction, const QString& what, double left) {
            progress_->setValue(int(fraction * 1000));
            status_->setText(left < 0 ? what : tr("%1   about %2 s left").arg(what).arg(left, 0, 'f', 0));
          });
  connect(model_, &DownloadedModel::opened, this, &DownloadedModelView::showOpened);
  connect(model_, &DownloadedModel::textRouted, this, &DownloadedModelView::showText);
  connect(model_, &DownloadedModel::domainsRouted, this, &DownloadedModelView::showDomains);
  connect(model_, &DownloadedModel::failed, this, [this](const QString& what, const QString& message) {
    setBusy(false);
    progress_->setValue(0);
    status_->setText(message == kDownloadedCancelled ? tr("%1: cancelled").arg(what)
                                                     : tr("%1 failed: %2").arg(what, message));
    const QString path = std::exchange(opening_, QString());
    if (!path.isEmpty() && message != kDownloadedCancelled) {
      Q_EMIT openFailed(path, message);
      return;
    }
    Q_EMIT failed(what, message);
  });
}

QString DownloadedModelView::statusText() const { return status_->text(); }

void DownloadedModelView::setBusy(bool busy) {
  const bool open = model_->isOpen();
  cancel_->setEnabled(busy);
  route_->setEnabled(!busy && open && model_->hasTokenizer());
  text_file_->setEnabled(!busy && open && model_->hasTokenizer());
  domains_button_->setEnabled(!busy && open && model_->hasTokenizer());
  probe_->setEnabled(!busy && routing_ != nullptr && routing_->ids.size() >= 2);
}

void DownloadedModelView::open(const QString& path) {
  status_->setText(tr("Opening %1...").arg(path));
  opening_ = path;
  setBusy(true);
  model_->open(path);
}

void DownloadedModelView::routeText(const QString& text) {
  opening_.clear();  // a new request supersedes an open still running
  setBusy(true);
  model_->routeText(text);
}

void DownloadedModelView::routeDomains(const QString& folder) {
  opening_.clear();
  setBusy(true);
  model_->routeDomains(folder);
}

void DownloadedModelView::cancel() { model_->cancel(); }

void DownloadedModelView::showOpened(const QString& path) {
  opening_.clear();
  const HfModelInfo& i = model_->info();
  routing_.reset();
  domains_.reset();
  QStringList layers;
  for (int l : i.moe_layers) layers << QString::number(l);
  summary_->setText(tr("<b>%1</b> (%2): %3 layers, MoE in %4 of them, %5 routed experts per "
                       "layer, top-%6, vocabulary %7.%8")
                        .arg(QString::fromStdString(i.family), QFileInfo(path).fileName())
                        .arg(i.n_layers)
                        .arg(i.moe_layers.size())
                        .arg(i.n_experts)
                        .arg(i.top_k)
                        .arg(i.vocab)
                        .arg(model_->hasTokenizer() ? QString()
                                                    : tr(" No tokenizer.json: it cannot read text.")));
  pair_layer_->clear();
  domain_layer_->clear();
  domain_layer_->addItem(tr("all MoE layers"), -1);
  for (size_t m = 0; m < i.moe_layers.size(); ++m) {
    pair_layer_->addItem(QStringLiteral("L%1").arg(i.moe_layers[m]), int(m));
    domain_layer_->addItem(QStringLiteral("L%1").arg(i.moe_layers[m]), int(m));
  }
  status_->setText(tr("Opened %1").arg(path));
  setBusy(false);
  Q_EMIT opened(path);
  if (model_->hasTokenizer()) routeText(text_->toPlainText());  // a first picture at once
}

void DownloadedModelView::showText(std::shared_ptr<const TextRouting> r) {
  routing_ = std::move(r);
  setBusy(false);
  progress_->setValue(1000);
  status_->setText(tr("%1 tokens routed in %2 s%3")
                       .arg(routing_->ids.size())
                       .arg(routing_->seconds, 0, 'f', 2)
                       .arg(routing_->truncated ? tr(" (the first %1 tokens of the text)")
                                                      .arg(TextRouting::kMaxTokens)
                                                : QString()));
  drawDownloadedHeatmap(heatmap_, *routing_);
  fillTokenTable(tokens_, *routing_);
  redrawCoactivation();
  Q_EMIT textRouted();
}

void DownloadedModelView::showDomains(std::shared_ptr<const DomainRouting> r) {
  domains_ = std::move(r);
  setBusy(false);
  progress_->setValue(1000);
  domain_box_->blockSignals(true);
  domain_box_->clear();
  for (size_t d = 0; d < domains_->domains.size(); ++d)
    domain_box_->addItem(domains_->domains[d], int(d));
  domain_box_->blockSignals(false);
  status_->setText(tr("%1 domains routed (at most %2 tokens each)")
                       .arg(domains_->domains.size())
                       .arg(domains_->max_tokens_per_domain));
  tabs_->setCurrentIndex(3);
  redrawDomain();
  Q_EMIT domainsRouted();
}

void DownloadedModelView::redrawCoactivation() {
  if (!routing_ || pair_layer_->currentIndex() < 0) return;
  drawCoactivation(coactivation_, *routing_, pair_layer_->currentIndex());
}

void DownloadedModelView::redrawDomain() {
  if (!domains_ || domain_box_->currentIndex() < 0) return;
  drawDomain(domain_plot_, *domains_, domain_box_->currentIndex(),
             domain_layer_->currentData().toInt());
}

}  // namespace unipool::studio
