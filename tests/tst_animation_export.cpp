// Animation export: a GIF from writeAnimatedGif reads back through giflib with the frames, size,
// delays, loop extension and exact flat colours it was given; bad input and unwritable paths
// fail with a message and leave nothing behind. writeVideo is checked against the real ffmpeg
// when there is one, and always against stand-in ffmpeg scripts that record how they were run.
#include <gif_lib.h>

#include <QDir>
#include <QFile>
#include <QPainter>
#include <QRandomGenerator>
#include <QTemporaryDir>
#include <QtTest>
#include <cstring>
#include <memory>
#include <tuple>

#include "views/animation_export.h"

using unipool::studio::ffmpegAvailable;
using unipool::studio::writeAnimatedGif;
using unipool::studio::writeVideo;

namespace {

// A flat background with flat rectangles on it: what a heatmap's cells look like.
QImage flatFrame(QSize size, QRgb background, const QList<QPair<QRect, QRgb>>& boxes = {}) {
  QImage image(size, QImage::Format_RGB32);
  image.fill(background);
  QPainter painter(&image);
  for (const auto& [rect, colour] : boxes) painter.fillRect(rect, QColor(colour));
  return image;
}

// Video frames: the content does not matter, only that there are `count` of them.
std::vector<QImage> someFrames(int count, QSize size) {
  return std::vector<QImage>(count, flatFrame(size, qRgb(0, 128, 128), {{{2, 2, 5, 5}, 0}}));
}

struct GifFreer {
  void operator()(GifFileType* gif) const { DGifCloseFile(gif, nullptr); }
};
using GifPtr = std::unique_ptr<GifFileType, GifFreer>;

// Writes `frames` as `dir`/out.gif and reads it back; null, with the error logged, on failure
// or when the file is not GIF89a (GIF87a has no delays or loops).
GifPtr roundTrip(const QTemporaryDir& dir, const std::vector<QImage>& frames, int delay_ms) {
  const QString path = dir.filePath("out.gif");
  QString error;
  if (!writeAnimatedGif(path, frames, delay_ms, &error)) qWarning("%s", qPrintable(error));
  QFile raw(path);
  if (!raw.open(QIODevice::ReadOnly) || raw.read(6) != "GIF89a") return nullptr;
  int code = 0;
  GifPtr gif(DGifOpenFileName(QFile::encodeName(path).constData(), &code));
  if (gif && DGifSlurp(gif.get()) != GIF_OK) gif.reset();
  return gif;
}

QColor pixelAt(const GifFileType* gif, int image, int x, int y) {
  const SavedImage& saved = gif->SavedImages[image];
  const ColorMapObject* map = saved.ImageDesc.ColorMap ? saved.ImageDesc.ColorMap : gif->SColorMap;
  const int index = saved.RasterBits[y * saved.ImageDesc.Width + x];
  if (map == nullptr || index >= map->ColorCount) return QColor();  // never a source colour
  return QColor(map->Colors[index].Red, map->Colors[index].Green, map->Colors[index].Blue);
}

// `count` images, each covering the whole `size` screen, shown for `delay` hundredths, opaque.
bool framesAre(const GifFileType* gif, int count, QSize size, int delay) {
  if (gif->ImageCount != count || gif->SWidth != size.width() || gif->SHeight != size.height()) {
    return false;
  }
  for (int i = 0; i < gif->ImageCount; ++i) {
    const GifImageDesc& desc = gif->SavedImages[i].ImageDesc;
    GraphicsControlBlock control;
    if (QRect(desc.Left, desc.Top, desc.Width, desc.Height) != QRect(QPoint(), size) ||
        DGifSavedExtensionToGCB(const_cast<GifFileType*>(gif), i, &control) != GIF_OK ||
        control.DelayTime != delay || control.TransparentColor != NO_TRANSPARENT_COLOR) {
      return false;
    }
  }
  return true;
}

// DGifSlurp hands extensions to the image that follows them, trailing ones to the file.
bool loopsForever(const GifFileType* gif) {
  const auto search = [](const ExtensionBlock* blocks, int count) {
    for (int i = 0; i + 1 < count; ++i) {
      const ExtensionBlock &app = blocks[i], &sub = blocks[i + 1];
      if (app.Function == APPLICATION_EXT_FUNC_CODE && app.ByteCount == 11 &&
          std::memcmp(app.Bytes, "NETSCAPE2.0", 11) == 0 && sub.ByteCount == 3 &&
          sub.Function == CONTINUE_EXT_FUNC_CODE && std::memcmp(sub.Bytes, "\1\0\0", 3) == 0) {
        return true;  // sub-block 1: loop count 0, i.e. forever
      }
    }
    return false;
  };
  return search(gif->SavedImages[0].ExtensionBlocks, gif->SavedImages[0].ExtensionBlockCount) ||
         search(gif->ExtensionBlocks, gif->ExtensionBlockCount);
}

// Everything in `dir`, hidden files included: failures must leave no temporary files either.
QStringList entries(const QString& dir) {
  return QDir(dir).entryList(QDir::AllEntries | QDir::Hidden | QDir::NoDotAndDotDot);
}

// A stand-in `ffmpeg` shell script with `body`, first on the PATH while this lives. An empty
// body writes no script and makes its empty folder the whole PATH: no ffmpeg anywhere.
class StandInFfmpeg {
 public:
  explicit StandInFfmpeg(const QByteArray& body) : old_path_(qgetenv("PATH")) {
    const QByteArray dir = QFile::encodeName(dir_.path());
    qputenv("PATH", body.isEmpty() ? dir : dir + ':' + old_path_);
    QFile script(dir_.filePath("ffmpeg"));
    if (body.isEmpty() || !script.open(QIODevice::WriteOnly)) return;
    script.write("#!/bin/sh\n" + body);
    script.setPermissions(QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
  }
  ~StandInFfmpeg() { qputenv("PATH", old_path_); }

 private:
  QTemporaryDir dir_;
  QByteArray old_path_;
};

}  // namespace

class TestAnimationExport : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void gifRoundTripsFramesDelaysLoopAndColours() {
    const QRgb red = qRgb(200, 30, 40), yellow = qRgb(250, 220, 10), teal = qRgb(0, 128, 128);
    const QRgb navy = qRgb(10, 20, 90), white = qRgb(255, 255, 255), grey = qRgb(77, 77, 77);
    // Two, three and one colours: palettes padded to 2, 4 and 2 entries.
    QTemporaryDir dir;
    GifPtr gif =
        roundTrip(dir,
                  {flatFrame({40, 30}, red, {{{10, 5, 12, 10}, yellow}}),
                   flatFrame({40, 30}, teal, {{{0, 0, 20, 15}, navy}, {{30, 20, 10, 10}, white}}),
                   flatFrame({40, 30}, grey)},
                  120);
    QVERIFY(gif);
    QVERIFY(framesAre(gif.get(), 3, {40, 30}, 12));
    QVERIFY(loopsForever(gif.get()));
    for (int i : {0, 1, 2}) {
      QCOMPARE(gif->SavedImages[i].ImageDesc.ColorMap->ColorCount, i == 1 ? 4 : 2);
    }
    const std::tuple<int, int, int, QRgb> probes[] = {
        {0, 0, 0, red},     {0, 39, 29, red},  {0, 10, 5, yellow}, {0, 21, 14, yellow},
        {0, 22, 14, red},   {1, 0, 0, navy},   {1, 19, 14, navy},  {1, 20, 15, teal},
        {1, 39, 29, white}, {1, 29, 29, teal}, {2, 0, 0, grey},    {2, 39, 29, grey}};
    for (const auto& [image, x, y, colour] : probes) {
      QCOMPARE(pixelAt(gif.get(), image, x, y), QColor(colour));
    }
  }

  void gifScalesFramesToTheFirstAndFlattensAlpha() {
    const QRgb blue = qRgb(0, 0, 255), orange = qRgb(255, 128, 0);
    QImage clear(10, 10, QImage::Format_ARGB32);
    clear.fill(Qt::transparent);
    QTemporaryDir dir;
    GifPtr gif =
        roundTrip(dir,
                  {flatFrame({40, 30}, blue), flatFrame({20, 15}, blue, {{{0, 0, 10, 15}, orange}}),
                   flatFrame({81, 61}, orange), clear},
                  0);
    QVERIFY(gif);
    QVERIFY(framesAre(gif.get(), 4, {40, 30}, 2));  // a zero delay plays at 1/10 s in browsers
    // The left half of the small frame stays its left half, with no blended edge colours.
    QCOMPARE(pixelAt(gif.get(), 1, 0, 0), QColor(orange));
    QCOMPARE(pixelAt(gif.get(), 1, 19, 29), QColor(orange));
    QCOMPARE(pixelAt(gif.get(), 1, 20, 0), QColor(blue));
    QCOMPARE(pixelAt(gif.get(), 2, 39, 29), QColor(orange));
    QCOMPARE(pixelAt(gif.get(), 3, 5, 5), QColor(Qt::white));  // transparency lands on white
  }

  void gifQuantizesBusyFramesWithoutDithering() {
    // 300 flat 4x4 cells: more colours than a palette holds, so Qt must quantize.
    QImage cells(80, 60, QImage::Format_RGB32);
    for (int i = 0; i < 80 * 60; ++i) {
      cells.setPixel(i % 80, i / 80, qRgb(i % 80 / 4 * 13, i / 80 / 4 * 17, 90));
    }
    QTemporaryDir dir;
    GifPtr gif = roundTrip(dir, {cells}, 100);
    QVERIFY(gif);
    QVERIFY(gif->SavedImages[0].ImageDesc.ColorMap->ColorCount <= 256);
    for (int i = 0; i < 80 * 60; ++i) {
      // Each cell stays one flat colour (dithering would speckle it), close to the source.
      const int x = i % 80, y = i / 80;
      const QColor got = pixelAt(gif.get(), 0, x, y), want(cells.pixel(x, y));
      QCOMPARE(got, pixelAt(gif.get(), 0, x / 4 * 4, y / 4 * 4));
      QVERIFY2(qAbs(got.red() - want.red()) <= 48 && qAbs(got.green() - want.green()) <= 48 &&
                   qAbs(got.blue() - want.blue()) <= 48,
               qPrintable(got.name() + " for " + want.name()));
    }
  }

  void badInputAndUnwritablePathsFailCleanly() {
    QTemporaryDir dir;
    const auto failsCleanly = [&](const QString& name, const std::vector<QImage>& frames,
                                  const char* mention = "") {
      QString error;
      const bool ok = name.endsWith(".gif")
                          ? writeAnimatedGif(dir.filePath(name), frames, 100, &error)
                          : writeVideo(dir.filePath(name), frames, 10, &error);
      return !ok && !error.isEmpty() && error.contains(mention) && entries(dir.path()).isEmpty();
    };
    QVERIFY(failsCleanly("empty.gif", {}));
    QVERIFY(failsCleanly("null.gif", {flatFrame({4, 4}, 0), QImage()}));
    QVERIFY(failsCleanly("missing/folder/out.gif", someFrames(2, {8, 8})));
    QVERIFY(failsCleanly("clip.avi", someFrames(2, {8, 8})));
    QVERIFY(failsCleanly("empty.mp4", {}));
    StandInFfmpeg nowhere({});
    QVERIFY(!ffmpegAvailable());
    QVERIFY(failsCleanly("clip.mp4", someFrames(2, {8, 8}), "ffmpeg"));
  }

  void videoWithTheRealFfmpeg() {
    QTemporaryDir dir;
    const QString path = dir.filePath("history.mp4");
    QString error;
    if (!ffmpegAvailable()) {
      QVERIFY(!writeVideo(path, someFrames(3, {41, 31}), 10, &error));
      QVERIFY2(error.contains("ffmpeg"), qPrintable(error));
      QVERIFY(entries(dir.path()).isEmpty());
      QSKIP("ffmpeg is not installed; the error path was checked instead");
    }
    QVERIFY2(writeVideo(path, someFrames(10, {41, 31}), 10, &error), qPrintable(error));
    QVERIFY(QFileInfo(path).size() > 0);
  }

  void videoPipesPngFramesToFfmpeg() {
    // Writes its arguments, and how many bytes of PNG it was fed, into its output file.
    StandInFfmpeg ffmpeg(
        "for last; do :; done\nn=$(wc -c)\n"
        "printf '%s\\n' \"$@\" \"bytes=$n\" > \"$last\"\n");
    QVERIFY(ffmpegAvailable());
    QTemporaryDir dir;
    QString error;
    QVERIFY2(writeVideo(dir.filePath("clip.mp4"), someFrames(5, {41, 31}), 12, &error),
             qPrintable(error));
    QFile file(dir.filePath("clip.mp4"));
    QVERIFY(file.open(QIODevice::ReadOnly));
    const QStringList args = QString::fromUtf8(file.readAll()).split('\n', Qt::SkipEmptyParts);
    const QString line = args.join(' ');
    for (const char* part : {" -y ", " -f image2pipe ", " -framerate 12 -i - ",
                             " -vf pad=ceil(iw/2)*2:", " -pix_fmt yuv420p ", " -c:v libx264 "}) {
      QVERIFY2(line.contains(part), qPrintable(line));
    }
    QVERIFY2(args.last().mid(6).trimmed().toInt() > 5 * 60, qPrintable(args.last()));  // 5 PNGs
    // Only the finished video is left: the partial file was renamed onto the target.
    QCOMPARE(entries(dir.path()), QStringList{"clip.mp4"});
    QVERIFY2(writeVideo(dir.filePath("clip.webm"), someFrames(2, {8, 8}), 5, &error),
             qPrintable(error));
    QFile webm(dir.filePath("clip.webm"));
    QVERIFY(webm.open(QIODevice::ReadOnly) && webm.readAll().contains("libvpx-vp9"));
  }

  void videoReportsFfmpegFailure() {
    QTemporaryDir dir;
    QString error;
    {
      // Starts an output file, as ffmpeg does, then fails: the partial file must not survive.
      StandInFfmpeg ffmpeg(
          "for last; do :; done\necho partial > \"$last\"\ncat > /dev/null\n"
          "echo noise >&2\necho 'boom: Unknown encoder libx264' >&2\nexit 3\n");
      QVERIFY(!writeVideo(dir.filePath("clip.mp4"), someFrames(4, {16, 16}), 10, &error));
      QVERIFY2(error.contains("exit code 3") && error.contains("boom: Unknown encoder libx264"),
               qPrintable(error));
      QVERIFY(entries(dir.path()).isEmpty());
    }
    // One that quits without reading its input, fed noise that overflows the pipe's buffer.
    StandInFfmpeg ffmpeg("echo refused >&2\nexit 1\n");
    QImage noise(256, 256, QImage::Format_RGB32);
    QRandomGenerator::global()->fillRange(reinterpret_cast<quint32*>(noise.bits()), 256 * 256);
    QVERIFY(!writeVideo(dir.filePath("clip.mp4"), std::vector<QImage>(4, noise), 10, &error));
    QVERIFY2(error.contains("exit code 1") && error.contains("refused"), qPrintable(error));
    QVERIFY(entries(dir.path()).isEmpty());
  }
};

QTEST_GUILESS_MAIN(TestAnimationExport)
#include "tst_animation_export.moc"
