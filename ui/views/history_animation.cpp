#include "views/history_animation.h"

#include <qcustomplot.h>

#include <QProgressDialog>
#include <algorithm>
#include <vector>

#include "views/animation_export.h"
#include "views/routing_heatmap_view.h"

namespace unipool::studio {

QString exportHeatmapHistory(RoutingHeatmapView* heatmap, int n, QWidget* parent,
                             const QString& path, int frame_ms) {
  if (n == 0) return QObject::tr("The run has no routing history yet: train a few steps first.");
  QCustomPlot* plot = heatmap->plot();
  const QSize size = plot->size().isValid() && plot->width() > 100 ? plot->size() : QSize(900, 500);
  QProgressDialog progress(QObject::tr("Rendering %1 frames...").arg(n), QObject::tr("Cancel"), 0,
                           n, parent);
  progress.setWindowModality(Qt::WindowModal);
  progress.setMinimumDuration(500);
  std::vector<QImage> frames;
  frames.reserve(size_t(n));
  for (int i = 0; i < n; ++i) {
    progress.setValue(i);
    if (progress.wasCanceled()) {
      heatmap->showSnapshot(-1);
      return QObject::tr("Cancelled.");
    }
    heatmap->showSnapshot(i);
    frames.push_back(plot->toPixmap(size.width(), size.height()).toImage());
  }
  heatmap->showSnapshot(-1);
  progress.setValue(n);
  QString error;
  const bool video = !path.endsWith(QLatin1String(".gif"), Qt::CaseInsensitive);
  const bool ok = video ? writeVideo(path, frames, std::max(1, 1000 / frame_ms), &error)
                        : writeAnimatedGif(path, frames, frame_ms, &error);
  return ok ? QString() : error;
}

}  // namespace unipool::studio
