// View 7: which experts take which kind of text. Rows are the built-in corpus's domains,
// columns the pool's experts; a cell is the share of that domain's routing choices that went
// to the expert (each row sums to 1), pooled over all layers or for one layer. "Lift" divides
// by the expert's share over all text, so a specialist stands out as > 1.
#pragma once

#include <QWidget>

#include "unipool/stats.h"

class QComboBox;
class QCustomPlot;
class QLabel;

namespace unipool::studio {

class RunSession;

class DomainView : public QWidget {
  Q_OBJECT
 public:
  explicit DomainView(RunSession* session, QWidget* parent = nullptr);
  QCustomPlot* plot() const { return plot_; }
  void setLayer(int layer);  // -1: pooled over layers
  void setLift(bool lift);
  // The drawn value for (domain, global expert); NaN when there is no routing.
  double value(int domain, int global_expert) const;

 private:
  void refresh();
  void draw();

  RunSession* session_;
  QCustomPlot* plot_;
  QComboBox *layer_box_, *measure_box_;
  QLabel* caption_;
  RoutingCounts counts_;
  int layer_ = -1;
  bool lift_ = false;
};

}  // namespace unipool::studio
