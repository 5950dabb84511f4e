// View 3: training CE, validation CE and the aux loss against steps, with smoothing, a log
// scale, and a labelled marker wherever the user changed something (pool resized, random
// routing switched, learning rate changed), so the effect of each change is visible. It can
// follow several runs at once (the compare view puts two on one plot).
#pragma once

#include <QColor>
#include <QVector>
#include <QWidget>
#include <vector>

#include "unipool/lock.h"

class QCheckBox;
class QCustomPlot;
class QSlider;

namespace unipool::studio {

class RunSession;

class LossCurvesView : public QWidget {
  Q_OBJECT
 public:
  explicit LossCurvesView(QWidget* parent = nullptr);
  void addSession(RunSession* session, const QColor& color);
  QCustomPlot* plot() const { return plot_; }
  void setSmoothing(double weight);  // 0 (raw) .. 0.99; exponential moving average weight
  double smoothing() const { return smoothing_; }
  void setLogScale(bool on);
  bool logScale() const;
  int markerCount() const { return marker_count_; }
  // The smoothed training CE of a run as drawn (for tests).
  QVector<double> drawnTrainCe(int run) const;

 private:
  // UniPool-lock: the phase band, the reference loss and the fail-stop line.
  void drawLockPhases(const LockStatus& lock, const QString& prefix);
  void draw();

  struct Run {
    RunSession* session;
    QColor color;
  };
  std::vector<Run> runs_;
  QCustomPlot* plot_;
  QSlider* smoothing_slider_;
  QCheckBox* log_box_;
  double smoothing_ = 0.6;
  int marker_count_ = 0;
};

}  // namespace unipool::studio
