#include "animation_export.h"

#include <gif_lib.h>

#include <QBuffer>
#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QPainter>
#include <QProcess>
#include <QSaveFile>
#include <QStandardPaths>
#include <algorithm>
#include <memory>

namespace unipool::studio {
namespace {

// A frame that takes longer than this to reach ffmpeg, or an encode that takes longer than this
// to finish once all frames are in, means ffmpeg is stuck; the UI thread must not hang forever.
constexpr int kFfmpegStallMs = 180 * 1000;

QString tr(const char* text) { return QCoreApplication::translate("AnimationExport", text); }

bool fail(QString* error, const QString& message) {
  if (error != nullptr) *error = message;
  return false;
}

bool checkFrames(const std::vector<QImage>& frames, QString* error) {
  if (frames.empty()) return fail(error, tr("There are no frames to export."));
  for (size_t i = 0; i < frames.size(); ++i) {
    if (frames[i].isNull())
      return fail(error, tr("Frame %1 of the animation is empty.").arg(i + 1));
  }
  return true;
}

// An opaque RGB32 copy of `frame` at `size`. Nearest-neighbour scaling keeps flat heatmap cells
// flat (smooth scaling would invent blend colours and could overflow a 256-colour palette).
// Translucent pixels are composed onto white, the usual slide background, because GIF only has
// on/off transparency and yuv420p video has none.
QImage normalizedFrame(const QImage& frame, const QSize& size) {
  const QImage scaled = frame.size() == size
                            ? frame
                            : frame.scaled(size, Qt::IgnoreAspectRatio, Qt::FastTransformation);
  if (!scaled.hasAlphaChannel()) return scaled.convertToFormat(QImage::Format_RGB32);
  QImage opaque(size, QImage::Format_RGB32);
  opaque.fill(Qt::white);
  QPainter painter(&opaque);
  painter.drawImage(0, 0, scaled);
  return opaque;
}

// giflib writes through this into a QSaveFile, so the target appears only on commit(): a failed
// export leaves neither a partial GIF nor a damaged earlier one, and non-ASCII paths just work.
struct GifSink {
  QSaveFile* file;
  bool failed = false;  // giflib ignores the result of many of its own writes, so we track it
};

int writeToSink(GifFileType* gif, const GifByteType* data, int length) {
  auto* sink = static_cast<GifSink*>(gif->UserData);
  const qint64 written = sink->file->write(reinterpret_cast<const char*>(data), length);
  if (written != length) sink->failed = true;
  return static_cast<int>(std::max<qint64>(written, 0));
}

struct GifCloser {
  void operator()(GifFileType* gif) const { EGifCloseFile(gif, nullptr); }
};
using ColorMapPtr = std::unique_ptr<ColorMapObject, decltype(&GifFreeMapObject)>;

// The frame's colour table as a GIF colour map. GIF stores 2, 4, ..., 256 entries and
// GifMakeMapObject refuses other counts, so the table is padded with black entries that no
// pixel refers to (a one-colour frame still needs two).
ColorMapPtr paddedColorMap(const QVector<QRgb>& table) {
  int count = 2;
  while (count < table.size()) count *= 2;
  ColorMapPtr map(GifMakeMapObject(count, nullptr), &GifFreeMapObject);
  if (!map) return map;
  for (int i = 0; i < count; ++i) {
    const QRgb rgb = i < table.size() ? table[i] : qRgb(0, 0, 0);
    map->Colors[i] = {static_cast<GifByteType>(qRed(rgb)), static_cast<GifByteType>(qGreen(rgb)),
                      static_cast<GifByteType>(qBlue(rgb))};
  }
  return map;
}

}  // namespace

bool writeAnimatedGif(const QString& path, const std::vector<QImage>& frames, int delay_ms,
                      QString* error) {
  if (!checkFrames(frames, error)) return false;
  const QSize size = frames.front().size();
  if (size.width() > 0xffff || size.height() > 0xffff) {
    return fail(error, tr("The frames are too large for a GIF (at most 65535 pixels a side)."));
  }
  const QString shown = QDir::toNativeSeparators(path);
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly)) {
    return fail(error, tr("Could not create %1: %2.").arg(shown, file.errorString()));
  }
  GifSink sink{&file};
  int code = E_GIF_SUCCEEDED;
  std::unique_ptr<GifFileType, GifCloser> gif(EGifOpen(&sink, writeToSink, &code));
  const auto gifFailed = [&](int gif_code) {
    if (sink.failed) {
      // After a failed write QSaveFile says only "Unknown error"; commit() refuses, discards
      // the temporary file and sets the real reason ("No space left on device").
      gif.reset();
      file.commit();
    }
    const char* text = GifErrorString(gif_code);
    const QString why = file.error() != QFileDevice::NoError ? file.errorString()
                        : text != nullptr                    ? QString::fromLatin1(text)
                                                             : tr("giflib error %1").arg(gif_code);
    return fail(error, tr("Could not write the GIF %1: %2.").arg(shown, why));
  };
  if (!gif) return gifFailed(code);
  // The sequential API stamps GIF87a unless told otherwise, and GIF87a has no extensions.
  EGifSetGifVersion(gif.get(), true);
  // NETSCAPE2.0 application extension: sub-block 1 with a loop count of 0, i.e. forever.
  static const GifByteType kLoopForever[] = {1, 0, 0};
  if (EGifPutScreenDesc(gif.get(), size.width(), size.height(), 8, 0, nullptr) == GIF_ERROR ||
      EGifPutExtensionLeader(gif.get(), APPLICATION_EXT_FUNC_CODE) == GIF_ERROR ||
      EGifPutExtensionBlock(gif.get(), 11, "NETSCAPE2.0") == GIF_ERROR ||
      EGifPutExtensionBlock(gif.get(), 3, kLoopForever) == GIF_ERROR ||
      EGifPutExtensionTrailer(gif.get()) == GIF_ERROR) {
    return gifFailed(gif->Error);
  }
  // Browsers stretch delays under 2/100 s to 1/10 s, so 2 is the fastest that plays as asked.
  const int delay = std::clamp((std::clamp(delay_ms, 0, 655350) + 5) / 10, 2, 0xffff);
  // Every frame covers the whole screen, so nothing needs disposing and nothing is transparent.
  const GraphicsControlBlock control{DISPOSE_DO_NOT, false, delay, NO_TRANSPARENT_COLOR};
  GifByteType control_bytes[4];
  const int control_length = static_cast<int>(EGifGCBToExtension(&control, control_bytes));

  for (const QImage& frame : frames) {
    // Per-frame palettes: exact for up to 256 colours, and AvoidDither keeps Qt from dithering
    // when it must quantize a busier frame, since speckle looks worse than banding on a heatmap.
    QImage indexed =
        normalizedFrame(frame, size)
            .convertToFormat(QImage::Format_Indexed8, Qt::ThresholdDither | Qt::AvoidDither);
    const ColorMapPtr map = paddedColorMap(indexed.colorTable());
    if (indexed.isNull() || !map) return gifFailed(E_GIF_ERR_NOT_ENOUGH_MEM);
    if (EGifPutExtension(gif.get(), GRAPHICS_EXT_FUNC_CODE, control_length, control_bytes) ==
            GIF_ERROR ||
        EGifPutImageDesc(gif.get(), 0, 0, size.width(), size.height(), false, map.get()) ==
            GIF_ERROR) {
      return gifFailed(gif->Error);
    }
    for (int y = 0; y < size.height(); ++y) {
      // EGifPutLine masks the row in place, so it gets our own (writable) copy's scan line.
      if (EGifPutLine(gif.get(), indexed.scanLine(y), size.width()) == GIF_ERROR) {
        return gifFailed(gif->Error);
      }
    }
    if (sink.failed) return gifFailed(E_GIF_ERR_WRITE_FAILED);
  }
  // Closing writes the trailer byte, so its result matters before the file is committed.
  if (EGifCloseFile(gif.release(), &code) == GIF_ERROR || sink.failed || !file.commit()) {
    return gifFailed(code);
  }
  return true;
}

bool ffmpegAvailable() {
  return !QStandardPaths::findExecutable(QStringLiteral("ffmpeg")).isEmpty();
}

bool writeVideo(const QString& path, const std::vector<QImage>& frames, int fps, QString* error) {
  if (!checkFrames(frames, error)) return false;
  if (fps <= 0) return fail(error, tr("The frame rate must be at least one frame per second."));
  const QFileInfo target(path);
  const QString suffix = target.suffix().toLower();
  QStringList codec;
  if (suffix == QLatin1String("mp4")) {
    // faststart puts the index first so that slide software can start playing at once.
    codec = {"-c:v", "libx264", "-crf", "18", "-movflags", "+faststart"};
  } else if (suffix == QLatin1String("webm")) {
    codec = {"-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "30"};
  } else {
    return fail(error, tr("A video can be saved as .mp4 or .webm, not as \"%1\".").arg(suffix));
  }
  const QString program = QStandardPaths::findExecutable(QStringLiteral("ffmpeg"));
  if (program.isEmpty()) {
    return fail(error, tr("Saving a video needs the ffmpeg program, which was not found on the "
                          "PATH. Install ffmpeg, or export an animated GIF instead."));
  }
  const QString folder = QDir::toNativeSeparators(target.absolutePath());
  if (!target.absoluteDir().exists()) return fail(error, tr("There is no folder %1.").arg(folder));
  // ffmpeg writes a hidden sibling that replaces `path` only on success, so a failed encode
  // leaves no truncated video behind and keeps an earlier file. The suffix picks the muxer.
  const QString partial = target.absoluteDir().filePath(
      QStringLiteral(".%1.partial.%2").arg(target.completeBaseName(), suffix));
  QStringList args = {"-hide_banner", "-loglevel", "error", "-y", "-f", "image2pipe", "-c:v", "png",
                      "-framerate", QString::number(fps), "-i", "-", "-an",
                      // H.264 and VP9 in yuv420p need even sizes: pad, never crop, the heatmap.
                      "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p"};
  args << codec << partial;

  QProcess ffmpeg;
  ffmpeg.setStandardOutputFile(QProcess::nullDevice());
  ffmpeg.start(program, args);
  if (!ffmpeg.waitForStarted()) {
    return fail(error, tr("Could not start ffmpeg (%1): %2.")
                           .arg(QDir::toNativeSeparators(program), ffmpeg.errorString()));
  }
  const auto abandon = [&](const QString& reason) {
    // Let ffmpeg finish saying why it stopped before the message is put together.
    ffmpeg.closeWriteChannel();
    if (!ffmpeg.waitForFinished(5000)) {
      ffmpeg.kill();
      ffmpeg.waitForFinished();
    }
    QFile::remove(partial);
    // A broken pipe is only the symptom when ffmpeg quit on its own; its exit code is the news.
    const QString what =
        ffmpeg.exitStatus() == QProcess::NormalExit && ffmpeg.exitCode() != 0
            ? tr("ffmpeg could not make the video (exit code %1).").arg(ffmpeg.exitCode())
            : reason;
    // With -loglevel error the last lines of stderr are the reason ffmpeg gave up.
    const QStringList lines = QString::fromLocal8Bit(ffmpeg.readAllStandardError())
                                  .split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    const QString tail = lines.mid(std::max<qsizetype>(0, lines.size() - 5)).join('\n').right(800);
    return fail(error, tail.isEmpty() ? what : tr("%1 ffmpeg said:\n%2").arg(what, tail));
  };
  const QSize size = frames.front().size();
  for (const QImage& frame : frames) {
    QByteArray png;
    QBuffer buffer(&png);
    buffer.open(QIODevice::WriteOnly);
    if (!normalizedFrame(frame, size).save(&buffer, "PNG")) {
      return abandon(tr("Could not encode a frame as PNG."));
    }
    // Drain the pipe before preparing the next frame, so at most one frame is held in memory.
    bool sent = ffmpeg.write(png) == png.size();
    while (sent && ffmpeg.bytesToWrite() > 0) sent = ffmpeg.waitForBytesWritten(kFfmpegStallMs);
    if (!sent)
      return abandon(tr("ffmpeg stopped accepting frames (%1).").arg(ffmpeg.errorString()));
  }
  ffmpeg.closeWriteChannel();
  if (!ffmpeg.waitForFinished(kFfmpegStallMs)) return abandon(tr("ffmpeg stopped responding."));
  // abandon() words a non-zero exit code itself.
  if (ffmpeg.exitStatus() != QProcess::NormalExit || ffmpeg.exitCode() != 0) {
    return abandon(tr("ffmpeg crashed."));
  }
  // QFile::rename never overwrites, hence the remove; both are checked so nothing is lost silently.
  if ((QFile::exists(path) && !QFile::remove(path)) || !QFile::rename(partial, path)) {
    QFile::remove(partial);
    return fail(error,
                tr("Could not replace %1 with the new video.").arg(QDir::toNativeSeparators(path)));
  }
  return true;
}

}  // namespace unipool::studio
