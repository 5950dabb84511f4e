// The automation's measurements (--measure-fps S, --simulate-hour): frames per second and
// tokens per second while the window repaints, and an hour of history's memory.
#include <qcustomplot.h>

#include <QElapsedTimer>
#include <QFile>
#include <QTimer>
#include <algorithm>
#include <cstdio>
#include <memory>

#include "automation.h"
#include "session/run_session.h"
#include "views/main_window.h"

namespace unipool::studio {

namespace {

// Resident memory of this process in MiB, from /proc (Linux only; 0 elsewhere).
double resident_mib() {
  QFile status(QStringLiteral("/proc/self/status"));
  if (!status.open(QIODevice::ReadOnly)) return 0;
  for (const QByteArray& line : status.readAll().split('\n')) {
    if (line.startsWith("VmRSS:"))
      return line.mid(6).trimmed().split(' ').first().toDouble() / 1024;
  }
  return 0;
}

}  // namespace

void Automation::measureFrames() {
  RunSession* s = window_->session();
  const TrainOptions o = s->state().options;
  const double tokens_per_step = double(o.batch) * double(o.seq);
  // Phase 1: training with the window's normal updates (<= 20 a second).
  auto phase = [this, s, tokens_per_step](bool force_frames, auto done) {
    auto* timer = new QElapsedTimer;
    timer->start();
    const int64_t step0 = s->state().step;
    auto frames = std::make_shared<int64_t>(0);
    auto* ticker = new QTimer(this);
    ticker->setInterval(0);
    connect(ticker, &QTimer::timeout, this, [=] {
      if (force_frames) {
        // A frame: every visible plot re-rendered from the newest data, then the whole window.
        for (QCustomPlot* plot : window_->findChildren<QCustomPlot*>())
          if (plot->isVisible()) plot->replot(QCustomPlot::rpImmediateRefresh);
        window_->repaint();
        ++*frames;
      }
      if (timer->elapsed() >= qint64(measure_seconds_ * 1000)) {
        ticker->stop();
        ticker->deleteLater();
        const double secs = timer->elapsed() / 1000.0;
        const double tps = double(s->state().step - step0) * tokens_per_step / secs;
        delete timer;
        done(double(*frames) / secs, tps);
      }
    });
    ticker->start();
  };
  s->post(cmd::Start{});
  phase(false, [=](double, double tps_quiet) {
    phase(true, [=](double fps, double tps_frames) {
      s->post(cmd::Pause{});
      std::printf(
          "fps while training: %.1f frames/s (heatmap, balance and loss replotted "
          "and the window repainted each frame)\n",
          fps);
      std::printf(
          "training: %.0f tokens/s with normal updates, %.0f tokens/s while "
          "repainting continuously\n",
          tps_quiet, tps_frames);
      std::printf("memory: %.0f MiB resident, history %.2f MiB\n", resident_mib(),
                  double(s->history().approximateBytes()) / (1 << 20));
      std::fflush(stdout);
      measure_seconds_ = 0;
      afterTraining();
    });
  });
}

void Automation::simulateHour() {
  // Replays a real step's routing as the history of an hour of training at this run's
  // measured speed, to show the history stays bounded.
  RunSession* s = window_->session();
  RunHistory& h = s->history();
  const RoutingCounts routing = h.latestRouting();
  const TrainOptions o = s->state().options;
  const double steps_per_s =
      std::max(1.0, s->tokensPerSecond() / (double(o.batch) * double(o.seq)));
  const int64_t steps = int64_t(3600 * steps_per_s);
  const double before = resident_mib();
  int64_t step = h.lastStep();
  for (int64_t i = 0; i < steps; ++i) {
    TrainingUpdate u;
    StepPoint p;
    p.step = ++step;
    p.ce = p.loss = 2.0 + 1.0 / double(i + 1);
    u.steps.push_back(p);
    u.step = step;
    u.routing = routing;
    h.addUpdate(u);
    if (step % 50 == 0) h.addValidation({step, p.ce, routing});
  }
  std::printf(
      "simulated hour: %lld steps, %zu loss points, %zu routing snapshots, history "
      "%.2f MiB, resident %.0f -> %.0f MiB\n",
      static_cast<long long>(steps), h.points().size(), h.snapshots().size(),
      double(h.approximateBytes()) / (1 << 20), before, resident_mib());
  std::fflush(stdout);
}

}  // namespace unipool::studio
