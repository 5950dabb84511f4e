// View 2: how evenly the pool is used. One bar per global expert with its pool load (optionally
// stacked by the layer that sent the tokens), the ideal line 1/Mg, and the figures of SPEC
// section 5 for the same window.
#pragma once

#include <QWidget>

#include "unipool/stats.h"

class QCheckBox;
class QCustomPlot;
class QLabel;

namespace unipool::studio {

class RunSession;

class PoolBalanceView : public QWidget {
  Q_OBJECT
 public:
  explicit PoolBalanceView(RunSession* session, QWidget* parent = nullptr);
  QCustomPlot* plot() const { return plot_; }
  void setStacked(bool stacked);
  const RoutingSummary& summary() const { return summary_; }
  QString figuresText() const;
  QString diagnosticsText() const;  // SPEC section 9

 private:
  void refresh();
  void draw();

  RunSession* session_;
  QCustomPlot* plot_;
  QCheckBox* stacked_;
  QLabel* figures_;
  RoutingCounts counts_;
  RoutingSummary summary_;
};

}  // namespace unipool::studio
