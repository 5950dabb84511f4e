// View 1: layers x pool experts. Each row is a layer, each column a global expert; a cell is
// the share of the layer's routing choices (or gate mass) that went to that expert. Experts a
// layer cannot reach (vanilla and grouped runs) are grey, so each layer's block shows. A time
// scrubber replays the run's routing snapshots while training goes on.
#pragma once

#include <QWidget>

#include "session/run_types.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QCPItemRect;
class QLabel;
class QSlider;

namespace unipool::studio {

class RunSession;

class RoutingHeatmapView : public QWidget {
  Q_OBJECT
 public:
  enum Mode { Share, GateMass };
  explicit RoutingHeatmapView(RunSession* session, QWidget* parent = nullptr);

  QCustomPlot* plot() const { return plot_; }
  void setMode(Mode mode);
  Mode mode() const { return mode_; }
  // Shows snapshot `index` of the history; -1 follows the newest (live).
  void showSnapshot(int index);
  int selectedExpert() const { return selected_expert_; }
  void selectExpert(int global_expert);  // -1 clears
  // The value drawn in a cell (NaN where the layer cannot reach the expert).
  double cellValue(int layer, int global_expert) const;
  // What hovering the cell says.
  QString describeCell(int layer, int global_expert) const;
  const RoutingCounts& shownCounts() const { return shown_; }

 Q_SIGNALS:
  void expertSelected(int global_expert);

 private:
  void refresh();
  void rebuildScrubber();
  void draw();
  // UniPool-lock at the shown snapshot: the partition once frozen (nullptr before), locked?
  const std::vector<std::vector<int>>* shownPartition() const;
  bool shownLocked() const;
  void onMouseMove(QMouseEvent* event);
  void onMousePress(QMouseEvent* event);
  bool cellAt(const QPoint& pos, int* layer, int* expert) const;

  RunSession* session_;
  QCustomPlot* plot_;
  QCPColorMap* map_;
  QCPColorScale* scale_;
  QCPItemRect* highlight_;
  QComboBox* mode_box_;
  QSlider* scrubber_;
  QCheckBox* live_;
  QLabel* caption_;
  Mode mode_ = Share;
  int selected_expert_ = -1;
  RoutingCounts shown_;
  RoutingCounts routed_;  // shown_ without its zero-gate tokens (unipool::without_zero_gate)
  int64_t shown_step_ = 0;
  int64_t shown_steps_ = 0;
};

}  // namespace unipool::studio
