// The heatmap's routing history as an animation for slides: every snapshot of the run's
// history rendered through the heatmap, written as a GIF or (with ffmpeg) a video.
#pragma once

#include <QString>

class QWidget;

namespace unipool::studio {

class RoutingHeatmapView;

// Renders snapshots 0..snapshots-1 (RunHistory::snapshots) through `heatmap`, with a
// cancellable progress dialog over `parent`, and writes them by `path`'s suffix: .gif, or
// .mp4/.webm through ffmpeg. Returns an empty string or the reason it failed; the heatmap goes
// back to what it showed.
QString exportHeatmapHistory(RoutingHeatmapView* heatmap, int snapshots, QWidget* parent,
                             const QString& path, int frame_ms = 150);

}  // namespace unipool::studio
