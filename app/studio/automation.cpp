#include "automation.h"

#include <QApplication>
#include <QFile>
#include <QFileInfo>
#include <QPixmap>
#include <QTabWidget>
#include <QTimer>
#include <algorithm>
#include <cstdio>

#include "session/experiment_jobs.h"
#include "session/run_session.h"
#include "views/compare_view.h"
#include "views/experiments_view.h"
#include "views/main_window.h"
#include "views/token_inspector_view.h"

namespace unipool::studio {

namespace {

bool is_preset(const QString& name) {
  const auto& names = preset_names();
  return std::find(names.begin(), names.end(), name.toStdString()) != names.end();
}

}  // namespace

void addAutomationOptions(QCommandLineParser& p) {
  p.addOption({QStringLiteral("preset"), QStringLiteral("Start a new run from preset <name>."),
               QStringLiteral("name")});
  p.addOption({QStringLiteral("open"), QStringLiteral("Open checkpoint <file> (resumes it)."),
               QStringLiteral("file")});
  p.addOption({QStringLiteral("train-steps"), QStringLiteral("Train <n> steps, then pause."),
               QStringLiteral("n")});
  p.addOption({QStringLiteral("screenshot"),
               QStringLiteral("After training, save a picture of the whole window to <file>."),
               QStringLiteral("file")});
  p.addOption({QStringLiteral("tab"),
               QStringLiteral(
                   "Show tab <name> (routing, tokens, domains, compare, checkpoint, redundancy, "
                   "downloaded, experiments)."),
               QStringLiteral("name")});
  p.addOption({QStringLiteral("measure-fps"),
               QStringLiteral("Measure repaint rate and training speed for <s> seconds each."),
               QStringLiteral("s")});
  p.addOption({QStringLiteral("simulate-hour"),
               QStringLiteral("Fill the history with an hour of steps and report memory.")});
  p.addOption({QStringLiteral("compare"),
               QStringLiteral("Also train runs B (and C) from presets <names> (comma-separated) "
                              "beside the first (same data and seed) for the same steps."),
               QStringLiteral("name")});
  p.addOption(
      {QStringLiteral("random-from"),
       QStringLiteral("Half-way through --train-steps, route layers <k> and below at random "
                      "(the paper's experiment, with a marker on the curves)."),
       QStringLiteral("k")});
  p.addOption({QStringLiteral("metrics"),
               QStringLiteral("After training, export the metrics to <file> (.csv or .json)."),
               QStringLiteral("file")});
  p.addOption(
      {QStringLiteral("probe"),
       QStringLiteral("Run the random-routing probe on checkpoints <files> (comma-separated, "
                      "at most two) before the screenshot."),
       QStringLiteral("files")});
  p.addOption({QStringLiteral("sweep"),
               QStringLiteral("Open the sweep folder <dir> in the Experiments tab."),
               QStringLiteral("dir")});
  p.addOption({QStringLiteral("watch"),
               QStringLiteral("Watch the run that writes log <file> (unipool train --log ... "
                              "--log-routing-every N): read-only, live."),
               QStringLiteral("file")});
  p.addOption(
      {QStringLiteral("lesson"),
       QStringLiteral("Play lesson <name> (a shipped lesson's file name, e.g. 03-shared-pool, "
                      "or a lesson file) up to --lesson-step."),
       QStringLiteral("name")});
  p.addOption({QStringLiteral("lesson-step"),
               QStringLiteral("Stop the lesson after step <n> (default 1), then screenshot."),
               QStringLiteral("n")});
  p.addOption({QStringLiteral("moe"),
               QStringLiteral("Open MoE checkpoint <path> (a .safetensors file or a sharded "
                              "folder) in the Redundancy tab; prints the seconds to the first "
                              "picture."),
               QStringLiteral("path")});
  p.addOption(
      {QStringLiteral("moe-compare"),
       QStringLiteral("With --moe: compare it with checkpoint <path> (a file or a folder)."),
       QStringLiteral("path")});
  p.addOption({QStringLiteral("downloaded"),
               QStringLiteral("Open downloaded model <folder> (config.json, safetensors, "
                              "tokenizer.json) in its tab and route --text-file (or the sample "
                              "text), then the screenshot."),
               QStringLiteral("folder")});
  p.addOption({QStringLiteral("text-file"),
               QStringLiteral("With --downloaded: the text to route (UTF-8)."),
               QStringLiteral("file")});
  p.addOption({QStringLiteral("export-plot"),
               QStringLiteral("Before the screenshot, export plot <name=file> (File > Export "
                              "plot's names, e.g. sweep-grid=grid.png; .png, .pdf or .svg). "
                              "Repeatable."),
               QStringLiteral("name=file")});
  p.addOption({QStringLiteral("quit"), QStringLiteral("Exit when done (0 on success).")});
}

Automation::Automation(MainWindow* window) : QObject(window), window_(window) {}

bool Automation::configure(const QCommandLineParser& p, QString* error) {
  if (p.isSet(QStringLiteral("preset"))) {
    preset_ = p.value(QStringLiteral("preset"));
    if (!is_preset(preset_)) {
      *error = QStringLiteral("unknown preset '%1'").arg(preset_);
      return false;
    }
  }
  open_ = p.value(QStringLiteral("open"));
  compare_ = p.value(QStringLiteral("compare")).split(QLatin1Char(','), Qt::SkipEmptyParts);
  if (compare_.size() > CompareView::kOthers) {
    *error = QStringLiteral("--compare takes at most %1 presets").arg(CompareView::kOthers);
    return false;
  }
  for (const QString& name : compare_) {
    if (!is_preset(name)) {
      *error = QStringLiteral("unknown preset '%1' for --compare").arg(name);
      return false;
    }
  }
  screenshot_ = p.value(QStringLiteral("screenshot"));
  lesson_ = p.value(QStringLiteral("lesson"));
  watch_ = p.value(QStringLiteral("watch"));
  moe_ = p.value(QStringLiteral("moe"));
  moe_compare_ = p.value(QStringLiteral("moe-compare"));
  downloaded_ = p.value(QStringLiteral("downloaded"));
  for (const QString& spec : p.values(QStringLiteral("export-plot"))) {
    const qsizetype eq = spec.indexOf(QLatin1Char('='));
    if (eq <= 0 || eq + 1 >= spec.size()) {
      *error = QStringLiteral("--export-plot wants name=file, not '%1'").arg(spec);
      return false;
    }
    export_plots_.append({spec.left(eq), spec.mid(eq + 1)});
  }
  text_file_ = p.value(QStringLiteral("text-file"));
  if (p.isSet(QStringLiteral("lesson-step"))) {
    bool ok = false;
    lesson_step_ = p.value(QStringLiteral("lesson-step")).toInt(&ok);
    if (!ok || lesson_step_ < 1) {
      *error = QStringLiteral("--lesson-step: a step number from 1");
      return false;
    }
  }
  metrics_ = p.value(QStringLiteral("metrics"));
  if (!metrics_.isEmpty() && !metrics_.endsWith(QLatin1String(".csv")) &&
      !metrics_.endsWith(QLatin1String(".json"))) {
    *error = QStringLiteral("--metrics needs a .csv or .json file name");
    return false;
  }
  tab_ = p.value(QStringLiteral("tab"));
  probe_ = p.value(QStringLiteral("probe")).split(QLatin1Char(','), Qt::SkipEmptyParts);
  for (const QString& file : probe_) {
    if (!QFile::exists(file)) {
      *error = QStringLiteral("--probe: no file %1").arg(file);
      return false;
    }
  }
  if (p.isSet(QStringLiteral("sweep")) &&
      !window_->experiments()->openSweep(p.value(QStringLiteral("sweep")))) {
    *error = QStringLiteral("cannot open the sweep folder %1: %2")
                 .arg(p.value(QStringLiteral("sweep")), window_->lastError());
    return false;
  }
  quit_ = p.isSet(QStringLiteral("quit"));
  simulate_hour_ = p.isSet(QStringLiteral("simulate-hour"));
  bool ok = true;
  if (p.isSet(QStringLiteral("train-steps"))) {
    train_steps_ = p.value(QStringLiteral("train-steps")).toLongLong(&ok);
    if (!ok || train_steps_ < 0) {
      *error = QStringLiteral("--train-steps needs a count >= 0");
      return false;
    }
  }
  if (p.isSet(QStringLiteral("random-from"))) {
    random_from_ = p.value(QStringLiteral("random-from")).toInt(&ok);
    if (!ok || random_from_ < 0) {
      *error = QStringLiteral("--random-from needs a layer index >= 0");
      return false;
    }
  }
  if (p.isSet(QStringLiteral("measure-fps"))) {
    measure_seconds_ = p.value(QStringLiteral("measure-fps")).toDouble(&ok);
    if (!ok || measure_seconds_ <= 0) {
      *error = QStringLiteral("--measure-fps needs a number of seconds > 0");
      return false;
    }
  }
  if (!tab_.isEmpty()) {
    // By page: the tabs' positions moved as tabs were added.
    QWidget* page = window_->tabPage(tab_);
    if (!page) {
      *error = QStringLiteral("unknown tab '%1'").arg(tab_);
      return false;
    }
    window_->tabs()->setCurrentWidget(page);
  }
  return true;
}

void Automation::begin() {
  if (!lesson_.isEmpty()) return beginLesson();
  if (!moe_.isEmpty()) return beginMoe();
  if (!downloaded_.isEmpty()) return beginDownloaded();
  if (!watch_.isEmpty()) {
    connect(window_->session(), &RunSession::failed, this,
            [this](const QString& what, const QString& why) { finish(1, what + ": " + why); });
    window_->session()->watchRun(watch_);
    // The log's backlog is read at once; give the views a moment to draw it.
    QTimer::singleShot(1500, this, [this] {
      trained_ = true;
      afterTraining();
    });
    return;
  }
  RunSession* s = window_->session();
  connect(s, &RunSession::halted, this, [this](const QString& why) {
    if (quit_) finish(1, why);
  });
  connect(s, &RunSession::failed, this, [this](const QString& what, const QString& why) {
    if (quit_) finish(1, what + QStringLiteral(": ") + why);
  });
  // Training starts once the run exists; it has ended when the worker stops running.
  connect(s, &RunSession::stateChanged, this, [this, s] {
    if (started_ || !s->state().valid) return;
    started_ = true;
    for (int i = 0; i < int(compare_.size()); ++i) {
      RunSession* b = window_->compare()->other(i);
      window_->compare()->createOther(i, compare_[i]);
      connect(b, &RunSession::stateChanged, this, [this, b] {
        if (b->state().valid && !b->isRunning() && b->state().step == 0 && train_steps_ > 0)
          b->post(cmd::RunUntil{train_steps_});
      });
    }
    target_step_ = s->state().step + train_steps_;
    if (train_steps_ > 0)
      s->post(cmd::RunUntil{random_from_ >= 0 ? s->state().step + train_steps_ / 2 : target_step_});
    else
      afterTraining();
  });
  connect(s, &RunSession::runningChanged, this, [this](bool running) {
    if (running || !started_ || train_steps_ == 0 || trained_) return;
    if (window_->session()->state().step < target_step_ && random_from_ >= 0) {
      RunSession* s = window_->session();
      s->post(RandomLayers::from_layer(s->state().config.n_layers, random_from_));
      random_from_ = -1;  // once; then the second half
      s->post(cmd::RunUntil{target_step_});
      return;
    }
    trained_ = true;
    waitForRunB();
  });
  if (!open_.isEmpty()) {
    if (!window_->openCheckpoint(open_) && quit_) finish(1, window_->lastError());
  } else {
    const Preset p = preset(preset_.toStdString());  // checked in configure()
    window_->session()->post(cmd::CreateRun{p.model, p.train, DataSpec{}, preset_});
  }
}

void Automation::waitForRunB() {
  bool all_done = true;
  for (int i = 0; i < int(compare_.size()); ++i) {
    RunSession* b = window_->compare()->other(i);
    all_done =
        all_done && b->state().valid && !b->isRunning() && b->history().lastStep() >= train_steps_;
  }
  if (all_done) {
    afterTraining();
    return;
  }
  QTimer::singleShot(100, this, &Automation::waitForRunB);
}

void Automation::afterTraining() {
  if (!probe_.isEmpty() && !probed_) {
    // The probe runs in the background; the rest follows when its results are drawn.
    probed_ = true;
    connect(
        window_->experiments()->jobs(), &ExperimentJobs::probeDone, this,
        [this] { QTimer::singleShot(0, this, &Automation::afterTraining); },
        Qt::SingleShotConnection);
    window_->experiments()->probeCheckpoints(probe_.mid(0, 2));
    return;
  }
  if (window_->tabs()->currentWidget() == window_->tokens()) window_->tokens()->loadDomainSample(2);
  if (window_->session()->state().can_train) window_->session()->post(cmd::EvaluateValidation{});
  if (measure_seconds_ > 0) {
    measureFrames();
    return;
  }
  if (simulate_hour_) simulateHour();
  // Let the queued updates and replots land before the picture is taken.
  QTimer::singleShot(600, this, [this] {
    if (!metrics_.isEmpty()) {
      const bool ok = metrics_.endsWith(QLatin1String(".csv"))
                          ? window_->exportMetricsCsv(metrics_)
                          : window_->exportMetricsJson(metrics_);
      if (!ok) {
        finish(1, window_->lastError());
        return;
      }
    }
    for (const auto& [name, path] : export_plots_) {
      if (!window_->exportPlot(name, path)) return finish(1, window_->lastError());
      std::printf("plot %s: %s\n", qPrintable(name), qPrintable(path));
    }
    if (!screenshot_.isEmpty()) {
      const QPixmap shot = window_->grab();
      if (shot.isNull() || !shot.save(screenshot_)) {
        finish(1, QStringLiteral("could not save the screenshot to %1").arg(screenshot_));
        return;
      }
      std::printf("screenshot: %s (%dx%d)\n", qPrintable(screenshot_), shot.width(), shot.height());
    }
    if (quit_) finish(0);
  });
}

void Automation::finish(int code, const QString& message) {
  if (!message.isEmpty()) std::fprintf(stderr, "unipool-studio: %s\n", qPrintable(message));
  QApplication::exit(code);
}

}  // namespace unipool::studio
