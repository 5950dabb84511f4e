// Animation export for a heatmap's history: a sequence of frames becomes a looping GIF (giflib)
// or a video (the ffmpeg program), so that a teacher can drop the evolution into a slide deck.
// Everything runs on the calling thread and works frame by frame, so memory stays bounded by
// one frame whatever the length of the history. Failures come back as a sentence for the user,
// never as an exception, because the caller shows them in a message box.
#pragma once

#include <QImage>
#include <QString>
#include <vector>

namespace unipool::studio {

// Frames must be non-empty; all frames are scaled to the first frame's size if they differ.
// Each frame gets its own palette of at most 256 colours, exact when the frame has no more than
// that (flat heatmap cells), so colours never dither. delay_ms is rounded to 1/100 s, at least
// 2/100 s because browsers slow shorter delays down to 1/10 s. The file loops forever and is
// written atomically: a failed export leaves no partial file, and an earlier file stays as it was.
// Returns false and sets *error (a sentence a user can read) on failure; never throws.
bool writeAnimatedGif(const QString& path, const std::vector<QImage>& frames, int delay_ms,
                      QString* error);

// Whether an `ffmpeg` program is on the PATH (QStandardPaths::findExecutable).
bool ffmpegAvailable();

// Video (.mp4 as H.264, .webm as VP9, chosen by the path's suffix) through the ffmpeg program:
// frames are piped to it as PNG, odd sizes are padded to even ones and the pixel format is
// yuv420p, which is what slide software and browsers play. Fails with a clear error when ffmpeg
// is missing, fails to start, or exits non-zero (the tail of its stderr is included). As with the
// GIF, a failure leaves no partial file. Blocks until ffmpeg has finished.
bool writeVideo(const QString& path, const std::vector<QImage>& frames, int fps, QString* error);

}  // namespace unipool::studio
