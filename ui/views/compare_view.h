// View 8: a second run beside the first, on the same data and seed (for example vanilla
// against UniPool at half the expert budget): both loss curves on one plot and both routing
// heatmaps side by side.
#pragma once

#include <QWidget>
#include <memory>

class QComboBox;
class QLabel;

namespace unipool::studio {

class LossCurvesView;
class RoutingHeatmapView;
class RunSession;

class CompareView : public QWidget {
  Q_OBJECT
 public:
  // `a` is the main run; the view owns run B.
  explicit CompareView(RunSession* a, QWidget* parent = nullptr);
  ~CompareView() override;

  RunSession* runB() const { return b_.get(); }
  LossCurvesView* lossView() const { return loss_; }
  RoutingHeatmapView* heatmapA() const { return heat_a_; }
  RoutingHeatmapView* heatmapB() const { return heat_b_; }
  // Builds run B from a preset, with run A's batch, sequence, schedule and seed.
  void createB(const QString& preset);
  void startBoth();
  void pauseBoth();

 private:
  void describe();

  RunSession* a_;
  std::unique_ptr<RunSession> b_;
  QComboBox* preset_;
  QLabel* caption_;
  LossCurvesView* loss_;
  RoutingHeatmapView *heat_a_, *heat_b_;
};

}  // namespace unipool::studio
