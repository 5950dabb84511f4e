// View 8: up to two more runs beside the first, on the same data and seed (vanilla against
// UniPool at half the expert budget; UniPool-lock against vanilla and lock-random): all loss
// curves on one plot and the routing heatmaps side by side.
#pragma once

#include <QWidget>
#include <memory>
#include <vector>

class QComboBox;
class QLabel;

namespace unipool::studio {

class LossCurvesView;
class RoutingHeatmapView;
class RunSession;

class CompareView : public QWidget {
  Q_OBJECT
 public:
  // `a` is the main run; the view owns runs B and C.
  explicit CompareView(RunSession* a, QWidget* parent = nullptr);
  ~CompareView() override;

  static constexpr int kOthers = 2;  // B and C
  RunSession* runB() const { return other(0); }
  RunSession* other(int i) const { return others_[size_t(i)].get(); }
  LossCurvesView* lossView() const { return loss_; }
  RoutingHeatmapView* heatmapA() const { return heat_a_; }
  RoutingHeatmapView* heatmapB() const { return heats_[0]; }
  // Builds run B (i = 0) or C (i = 1) from a preset, with run A's batch, sequence, schedule
  // and seed.
  void createB(const QString& preset) { createOther(0, preset); }
  void createOther(int i, const QString& preset);
  void startBoth();  // A and every other run that exists
  void pauseBoth();

 private:
  void describe();

  RunSession* a_;
  std::vector<std::unique_ptr<RunSession>> others_;
  std::vector<QComboBox*> presets_;
  QLabel* caption_;
  LossCurvesView* loss_;
  RoutingHeatmapView* heat_a_;
  std::vector<RoutingHeatmapView*> heats_;
};

}  // namespace unipool::studio
