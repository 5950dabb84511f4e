// View: cross-layer expert redundancy of any MoE checkpoint, ours or downloaded (Mixtral,
// OLMoE, Qwen-MoE, DeepSeek, GPT-OSS; one file or a sharded folder). Architecture and the
// UniPool view of its expert budget, the expert x expert similarity over all layers, the most
// similar cross-layer pairs, each layer's nearest experts elsewhere, within- against
// cross-layer similarity, expert norms and routers compared. The session layer's MoeAnalysis
// reads the files on a background thread with a progress bar and Cancel.
#pragma once

#include <QWidget>
#include <memory>

#include "session/moe_analysis.h"

class QCustomPlot;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QTextBrowser;

namespace unipool::studio {

class RedundancyView : public QWidget {
  Q_OBJECT
 public:
  explicit RedundancyView(QWidget* parent = nullptr);
  // A .safetensors file or a checkpoint folder. Returns at once; reportReady() or failed()
  // follows (failed with "cancelled" after Cancel).
  void open(const QString& path);
  void cancel();
  // A second checkpoint to compare with (a UniPool or vanilla model trained here, a downloaded
  // one): its cross-layer similarity is drawn in the histogram beside the shown one's and the
  // summary sets the two side by side. Returns at once; referenceReady() or failed() follows.
  void openReference(const QString& path);
  const MoeReport* reference() const { return reference_.get(); }
  bool busy() const;
  const MoeReport* report() const { return report_.get(); }
  QString statusText() const;
  QString summaryText() const;
  QCustomPlot* similarityPlot() const { return similarity_; }
  QCustomPlot* histogramPlot() const { return histogram_; }
  QTableWidget* pairsTable() const { return pairs_; }
  QTableWidget* nearestTable() const { return nearest_; }
  QProgressBar* progressBar() const { return progress_; }
  QPushButton* cancelButton() const { return cancel_; }
  // What the similarity map's cell under `pixel` (plot coordinates) compares; "" off the map.
  QString describeSimilarityAt(const QPoint& pixel) const;

 Q_SIGNALS:
  void reportReady(const QString& path);
  void failed(const QString& path, const QString& reason);
  void referenceReady(const QString& path);

 private:
  void show(std::shared_ptr<const MoeReport> report);
  void fillSummary(const MoeReport& r);
  void fillTables(const MoeReport& r);
  void showReference(std::shared_ptr<const MoeReport> reference);
  // A failed or cancelled analysis: the status says so, failed() is sent, what was shown
  // stays. False when `r` succeeded.
  bool reportFailure(const MoeReport& r, const QString& purpose);

  QLabel* status_;
  QProgressBar* progress_;
  QPushButton *open_file_, *open_folder_, *compare_, *cancel_;
  QSpinBox* rows_;
  QTextBrowser* summary_;
  QTableWidget *pairs_, *nearest_;
  QCustomPlot *similarity_, *histogram_, *norms_, *routers_;
  MoeAnalysis analysis_, reference_analysis_;
  std::shared_ptr<const MoeReport> report_, reference_;
  QString last_dir_;
  int block_ = 1;  // experts per map side of a cell (above 1,024 experts, drawSimilarity)
};

}  // namespace unipool::studio
