#include "views/presenter_mode.h"

#include <qcustomplot.h>

#include <QAction>
#include <QApplication>
#include <QSettings>

namespace unipool::studio {

namespace {
constexpr double kPresenterFontScale = 1.5;
constexpr double kPresenterLineWidth = 3.5;
const char* kPresenterKey = "presenterMode";

// The application's font size before presenter mode ever changed it (one per process: a second
// window must not take the enlarged size for the normal one).
double normalFontSize() {
  static const double size = QApplication::font().pointSizeF();
  return size;
}
}  // namespace

PresenterMode::PresenterMode(QWidget* root) : QObject(root), root_(root) {
  action_ = new QAction(tr("&Presenter mode"), this);
  action_->setObjectName(QStringLiteral("presenterMode"));
  action_->setCheckable(true);
  action_->setShortcut(QKeySequence(Qt::Key_F5));
  connect(action_, &QAction::toggled, this, &PresenterMode::set);
  // Every plot replot re-applies the line widths, so curves a view adds later follow too.
  for (QCustomPlot* plot : root->findChildren<QCustomPlot*>())
    connect(plot, &QCustomPlot::beforeReplot, this, [this, plot] {
      if (!on_) return;
      for (int i = 0; i < plot->graphCount(); ++i) {
        QPen pen = plot->graph(i)->pen();
        if (pen.widthF() < kPresenterLineWidth) pen.setWidthF(kPresenterLineWidth);
        plot->graph(i)->setPen(pen);
      }
    });
  set(QSettings().value(QLatin1String(kPresenterKey), false).toBool());
}

void PresenterMode::set(bool on) {
  on_ = on;
  QSettings().setValue(QLatin1String(kPresenterKey), on);
  QFont font = QApplication::font();
  font.setPointSizeF(normalFontSize() * (on ? kPresenterFontScale : 1.0));
  QApplication::setFont(font);
  for (QCustomPlot* plot : root_->findChildren<QCustomPlot*>()) {
    for (QCPAxisRect* rect : plot->axisRects()) {
      for (QCPAxis* axis : rect->axes()) {
        QFont f = axis->tickLabelFont();
        f.setPointSizeF(font.pointSizeF());
        axis->setTickLabelFont(f);
        axis->setLabelFont(f);
      }
    }
    if (!on) {  // back to the views' own widths: they set them on their next refresh
      for (int i = 0; i < plot->graphCount(); ++i) {
        QPen pen = plot->graph(i)->pen();
        if (pen.widthF() >= kPresenterLineWidth) pen.setWidthF(1.5);
        plot->graph(i)->setPen(pen);
      }
    }
    plot->replot(QCustomPlot::rpQueuedReplot);
  }
  const QSignalBlocker block(action_);
  action_->setChecked(on);
}

}  // namespace unipool::studio
