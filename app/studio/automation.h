// What unipool-studio does when it is driven from the command line instead of by a person:
// start with a preset or a checkpoint, train N steps, take a screenshot, measure frames per
// second, fill an hour of history, quit. Used by the tests, the docs and the README figures.
// It drives the app as a script would: runs, settings and training through the session's API
// (RunSession), files through the window's File actions, and the window itself only for what a
// person sees (the tab shown, the screenshot, repaint timing).
#pragma once

#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QObject>
#include <QString>
#include <QStringList>

namespace unipool::studio {

class MainWindow;

void addAutomationOptions(QCommandLineParser& parser);

class Automation : public QObject {
  Q_OBJECT
 public:
  explicit Automation(MainWindow* window);
  // Reads the options; false (with the reason) for bad values.
  bool configure(const QCommandLineParser& parser, QString* error);
  void begin();

 private:
  void beginLesson();  // --lesson: play it up to --lesson-step, then the screenshot
  void beginMoe();     // --moe: open it in the Redundancy tab, then the screenshot
  void beginDownloaded();  // --downloaded: open it in its tab, route a text, the screenshot
  void afterTraining();
  void waitForRunB();
  void measureFrames();
  void simulateHour();
  void finish(int code, const QString& message = {});

  MainWindow* window_;
  QString preset_ = QStringLiteral("default"), open_, screenshot_, tab_, metrics_;
  QString lesson_, watch_, moe_, moe_compare_, downloaded_, text_file_;
  int lesson_step_ = 1;
  QStringList compare_;  // presets of runs B and C
  QStringList probe_;    // checkpoints for the probe
  QList<std::pair<QString, QString>> export_plots_;  // --export-plot name=file
  bool probed_ = false;
  int64_t train_steps_ = 0;
  int random_from_ = -1;     // --random-from: deep layers go random half-way through
  int64_t target_step_ = 0;  // where training ends
  double measure_seconds_ = 0;
  bool quit_ = false, simulate_hour_ = false, started_ = false, trained_ = false;
};

}  // namespace unipool::studio
