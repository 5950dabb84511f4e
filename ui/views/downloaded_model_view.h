// View: a downloaded MoE model (Mixtral, OLMoE, Qwen-MoE, DeepSeek) as a run that cannot
// train. Type or open a text: the Routing heatmap (MoE layer x expert, share of tokens whose
// top-k holds the expert), the Tokens grid (the model's own tokens, each layer's experts),
// expert co-activation per layer; a folder of .txt files gives Domains (one file = one
// domain, against the uniform k/E line); "Probe" hands the text to the Experiments tab. The
// session layer's DownloadedModel runs every pass off the window's thread with progress and
// Cancel; the current training run is left as it is.
#pragma once

#include <QWidget>
#include <memory>

#include "session/downloaded_model.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTabWidget;
class QTableWidget;

namespace unipool::studio {

class DownloadedModelView : public QWidget {
  Q_OBJECT
 public:
  explicit DownloadedModelView(QWidget* parent = nullptr);

  // Returns at once: opened() or failed() follows. The model shown until then stays.
  void open(const QString& path);
  void routeText(const QString& text);
  void routeDomains(const QString& folder);
  void cancel();

  DownloadedModel* model() const { return model_; }
  const TextRouting* routing() const { return routing_.get(); }
  const DomainRouting* domains() const { return domains_.get(); }
  QString statusText() const;
  QPlainTextEdit* textEdit() const { return text_; }
  QCustomPlot* heatmapPlot() const { return heatmap_; }
  QCustomPlot* coactivationPlot() const { return coactivation_; }
  QCustomPlot* domainPlot() const { return domain_plot_; }
  QTableWidget* tokenTable() const { return tokens_; }
  QComboBox* domainBox() const { return domain_box_; }
  QPushButton* cancelButton() const { return cancel_; }

 Q_SIGNALS:
  void opened(const QString& path);
  void textRouted();
  void domainsRouted();
  // `message` is kDownloadedCancelled after Cancel.
  void failed(const QString& what, const QString& message);
  // Opening `path` failed (not cancelled): the window offers its Redundancy view instead.
  void openFailed(const QString& path, const QString& message);
  // "Probe" pressed: the Experiments tab runs it on these ids.
  void probeRequested(std::shared_ptr<const unipool::HfModel> model, std::vector<int32_t> ids,
                      const QString& label, int seq);

 private:
  void showOpened(const QString& path);
  void showText(std::shared_ptr<const TextRouting> r);
  void showDomains(std::shared_ptr<const DomainRouting> r);
  void redrawCoactivation();
  void redrawDomain();
  void setBusy(bool busy);

  DownloadedModel* model_;
  QLabel *status_, *summary_;
  QProgressBar* progress_;
  QPushButton *open_, *route_, *text_file_, *domains_button_, *probe_, *cancel_;
  QPlainTextEdit* text_;
  QTabWidget* tabs_;
  QCustomPlot *heatmap_, *coactivation_, *domain_plot_;
  QTableWidget* tokens_;
  QComboBox *pair_layer_, *domain_box_, *domain_layer_;
  QString opening_;  // the path being opened, until opened or failed
  std::shared_ptr<const TextRouting> routing_;
  std::shared_ptr<const DomainRouting> domains_;
};

}  // namespace unipool::studio
