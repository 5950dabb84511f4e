#include "views/token_inspector_view.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <numeric>

#include "session/run_session.h"
#include "unipool/corpus.h"
#include "views/plot_style.h"

namespace unipool::studio {

namespace {

// How a byte is shown in a header: printable ASCII as itself, the rest as an escape.
QString byte_label(unsigned char b) {
  if (b == '\n') return QStringLiteral("\\n");
  if (b == ' ') return QStringLiteral("␣");
  if (b >= 33 && b < 127) return QString(QChar(b));
  return QStringLiteral("x%1").arg(int(b), 2, 16, QLatin1Char('0'));
}

}  // namespace

TokenInspectorView::TokenInspectorView(RunSession* session, QWidget* parent)
    : QWidget(parent), session_(session) {
  input_ = new QPlainTextEdit(this);
  input_->setPlaceholderText(tr("Type or paste text, or pick a sample of a built-in domain"));
  input_->setMaximumHeight(90);
  samples_ = new QComboBox(this);
  samples_->addItem(tr("Sample of a domain..."));
  for (const auto& name : builtin_domain_names()) samples_->addItem(QString::fromStdString(name));
  route_ = new QPushButton(tr("Route"), this);
  route_->setToolTip(tr("Run the text through the model and show each layer's choice"));
  generate_ = new QPushButton(tr("Generate"), this);
  gen_tokens_ = new QSpinBox(this);
  gen_tokens_->setRange(1, 2000);
  gen_tokens_->setValue(120);
  gen_tokens_->setSuffix(tr(" bytes"));
  temperature_ = new QDoubleSpinBox(this);
  temperature_->setRange(0, 5);
  temperature_->setSingleStep(0.1);
  temperature_->setValue(0.8);
  temperature_->setPrefix(tr("temperature "));

  grid_ = new QTableWidget(this);
  grid_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  grid_->setSelectionMode(QAbstractItemView::SingleSelection);
  grid_->horizontalHeader()->setDefaultSectionSize(26);
  grid_->horizontalHeader()->setSectionResizeMode(QHeaderView::Fixed);
  grid_->verticalHeader()->setDefaultSectionSize(22);
  prediction_ = new QLabel(tr("Route a text to see the next-byte prediction."), this);
  prediction_->setWordWrap(true);
  output_ = new QPlainTextEdit(this);
  output_->setReadOnly(true);
  output_->setPlaceholderText(tr("Generated continuation"));
  output_->setMaximumHeight(90);

  auto* bar = new QHBoxLayout;
  bar->addWidget(samples_);
  bar->addWidget(route_);
  bar->addStretch(1);
  bar->addWidget(gen_tokens_);
  bar->addWidget(temperature_);
  bar->addWidget(generate_);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(input_);
  layout->addLayout(bar);
  layout->addWidget(grid_, 1);
  layout->addWidget(prediction_);
  layout->addWidget(output_);

  connect(samples_, &QComboBox::activated, this, [this](int i) {
    if (i > 0) loadDomainSample(i - 1);
  });
  connect(route_, &QPushButton::clicked, this, &TokenInspectorView::route);
  connect(generate_, &QPushButton::clicked, this, &TokenInspectorView::generate);
  connect(grid_, &QTableWidget::currentCellChanged, this,
          [this](int, int column) { showPrediction(column); });
  connect(session_, &RunSession::routesReady, this, &TokenInspectorView::showRoutes);
  connect(session_, &RunSession::generated, this,
          [this](const QString& prompt, const QString& text) {
            output_->setPlainText(prompt + QStringLiteral("⟦") + text + QStringLiteral("⟧"));
          });
}

void TokenInspectorView::setText(const QString& text) { input_->setPlainText(text); }

void TokenInspectorView::loadDomainSample(int domain) {
  try {
    const std::string sample = builtin_domain_sample(domain, 120, uint64_t(domain) + 11);
    setText(QString::fromStdString(sample.substr(0, 160)));
  } catch (const std::exception&) {
    return;
  }
  route();
}

void TokenInspectorView::route() {
  QString text = input_->toPlainText();
  if (text.isEmpty()) {
    prediction_->setText(tr("Nothing to route: type some text first."));
    return;
  }
  // Tokens are bytes: cut by UTF-8 length, not by characters, and never inside a character
  // (half of one would come back as U+FFFD, three bytes the user never typed).
  const QByteArray bytes = text.toUtf8();
  qsizetype n = std::min<qsizetype>(kMaxBytes, bytes.size());
  while (n > 0 && n < bytes.size() && (uchar(bytes[n]) & 0xC0) == 0x80) --n;
  session_->post(cmd::RequestRoutes{QString::fromUtf8(bytes.left(n))});
}

void TokenInspectorView::generate() {
  GenerateOptions o;
  o.tokens = gen_tokens_->value();
  o.temperature = temperature_->value();
  session_->post(cmd::RequestGenerate{input_->toPlainText(), o});
}

QString TokenInspectorView::continuation() const { return output_->toPlainText(); }

void TokenInspectorView::showRoutes(const TokenRoutes& r) {
  routes_ = r;
  const int n = int(r.n_tokens), L = r.n_layers, k = r.top_k;
  grid_->clear();
  grid_->setColumnCount(n);
  grid_->setRowCount(L);
  QStringList columns, rows;
  for (int t = 0; t < n; ++t) columns << byte_label((unsigned char)(r.text[size_t(t)]));
  for (int l = 0; l < L; ++l) rows << tr("L%1").arg(l);
  grid_->setHorizontalHeaderLabels(columns);
  grid_->setVerticalHeaderLabels(rows);
  for (int t = 0; t < n; ++t) {
    for (int l = 0; l < L; ++l) {
      const size_t at = (size_t(t) * size_t(L) + size_t(l)) * size_t(k);
      const int expert = r.experts[at];
      auto* item = new QTableWidgetItem(QString::number(expert));
      const QColor color = categoryColor(expert);
      item->setBackground(color);
      item->setForeground(color.lightness() > 150 ? Qt::black : Qt::white);
      item->setTextAlignment(Qt::AlignCenter);
      QStringList gates;
      for (int j = 0; j < k; ++j) {
        gates << tr("expert %1 gate %2")
                     .arg(r.experts[at + size_t(j)])
                     .arg(double(r.gates[at + size_t(j)]), 0, 'f', 3);
      }
      item->setToolTip(tr("byte %1 '%2', layer %3\n%4")
                           .arg(t)
                           .arg(columns[t])
                           .arg(l)
                           .arg(gates.join(QLatin1Char('\n'))));
      grid_->setItem(l, t, item);
    }
  }
  if (n > 0) showPrediction(n - 1);
}

QString TokenInspectorView::predictionText(int64_t token) const {
  const TokenRoutes& r = routes_;
  if (token < 0 || token >= r.n_tokens) return {};
  const float* p = r.next_byte.data() + size_t(token) * 256;
  std::vector<int> order(256);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                    [p](int a, int b) { return p[a] > p[b]; });
  QStringList best;
  for (int i = 0; i < 5; ++i)
    best << QStringLiteral("'%1' %2%")
                .arg(byte_label((unsigned char)order[size_t(i)]))
                .arg(100.0 * p[order[size_t(i)]], 0, 'f', 1);
  return tr("After byte %1 ('%2') the model predicts: %3")
      .arg(token)
      .arg(byte_label((unsigned char)r.text[size_t(token)]))
      .arg(best.join(QStringLiteral(", ")));
}

void TokenInspectorView::showPrediction(int column) {
  const QString text = predictionText(column);
  if (!text.isEmpty()) prediction_->setText(text);
}

}  // namespace unipool::studio
