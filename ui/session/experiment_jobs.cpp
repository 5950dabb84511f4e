#include "session/experiment_jobs.h"

#include <QElapsedTimer>
#include <QMetaObject>

namespace unipool::studio {

ExperimentJobs::ExperimentJobs(QObject* parent) : QObject(parent) {
  static const bool registered = [] {
    qRegisterMetaType<SweepState>();
    qRegisterMetaType<std::vector<ProbeResult>>();
    return true;
  }();
  (void)registered;
}

ExperimentJobs::~ExperimentJobs() {
  cancel();
  if (thread_) {
    thread_->wait();
    delete thread_;
  }
}

void ExperimentJobs::cancel() { cancel_ = true; }

template <class Work>
void ExperimentJobs::launch(Work work) {
  if (thread_) {
    Q_EMIT failed(tr("An experiment is already running: cancel it first."));
    return;
  }
  cancel_ = false;
  thread_ = QThread::create([this, work] {
    try {
      work();
    } catch (const std::exception& e) {
      // Signals from this thread are queued to the receivers' (the window's) thread.
      Q_EMIT failed(QString::fromUtf8(e.what()));
    }
  });
  connect(thread_, &QThread::finished, this, &ExperimentJobs::finished);
  thread_->start();
}

void ExperimentJobs::finished() {
  thread_->wait();
  delete thread_;
  thread_ = nullptr;
}

void ExperimentJobs::startProbe(const QStringList& checkpoints, const QStringList& labels,
                                int seeds, int64_t max_windows) {
  launch([this, checkpoints, labels, seeds, max_windows] {
    std::vector<ProbeResult> results;
    for (int i = 0; i < checkpoints.size(); ++i) {
      // threads = 0: a training thread may be running beside this one.
      auto engine = Engine::open(checkpoints[i].toStdString(), false, DataSpec{}, 0);
      const QString label = labels.value(i, checkpoints[i]);
      results.push_back(run_probe(
          *engine, label.toStdString(), engine->validation_text(), engine->options().seq, seeds,
          max_windows, [&](int64_t done, int64_t total) {
            Q_EMIT progress((double(i) + double(done) / double(total)) / double(checkpoints.size()),
                            tr("probe %1: %2 of %3 evaluations").arg(label).arg(done).arg(total));
            return !cancel_.load();
          }));
    }
    Q_EMIT probeDone(results);
  });
}

void ExperimentJobs::startDownloadedProbe(std::shared_ptr<const HfModel> model,
                                          std::vector<int32_t> ids, const QString& label,
                                          int seq, int seeds, int64_t max_windows) {
  launch([this, model, ids, label, seq, seeds, max_windows] {
    const int layers = int(model->info().moe_layers.size());
    const int64_t total = 1 + 2 * int64_t(layers) * seeds;  // none, each layer, each "from"
    int64_t done = 0;
    QElapsedTimer clock;
    clock.start();
    // Progress inside an evaluation: a large model's single pass takes minutes.
    const ProgressFn inner = [&](double part, const std::string&) {
      const double fraction = (double(done) + part) / double(total);
      const double left = fraction > 0.01 ? double(clock.elapsed()) / 1000.0 * (1 - fraction) / fraction : -1;
      Q_EMIT progress(fraction, left < 0 ? tr("probe %1: evaluation %2 of %3").arg(label).arg(done + 1).arg(total)
                                         : tr("probe %1: evaluation %2 of %3   about %4 min left")
                                               .arg(label).arg(done + 1).arg(total).arg(left / 60.0, 0, 'f', 1));
      return !cancel_.load();
    };
    ProbeResult r = run_probe(
        [&](const std::vector<bool>& random, uint64_t draw) {
          return model->evaluate(ids, seq, random, max_windows, draw, inner);
        },
        model->info().moe_layers, label.toStdString(), seq, seeds, [&](int64_t d, int64_t) {
          done = d;
          return !cancel_.load();
        });
    Q_EMIT probeDone({r});
  });
}

void ExperimentJobs::startSweep(const QString& dir, const SweepSpec& spec, int parallel) {
  launch([this, dir, spec, parallel] {
    SweepState state = open_sweep(dir.toStdString(), spec);
    Q_EMIT sweepState(state);
    int64_t todo = 0;
    for (const SweepRun& r : state.runs) todo += r.done ? 0 : spec.steps;
    int64_t done = 0;
    QElapsedTimer clock;
    clock.start();
    bool cancelled = false;
    try {
      run_sweep(state, parallel, [&](const SweepEvent& e) {
        if (e.finished) {
          Q_EMIT sweepState(state);
          return !cancel_.load();
        }
        ++done;
        Q_EMIT sweepStep(e.run, e.step, e.ce);
        if (done % 5 == 0 || done == todo) {
          const double left = double(clock.elapsed()) / 1000.0 / double(done) * double(todo - done);
          Q_EMIT progress(double(done) / double(std::max<int64_t>(todo, 1)),
                          tr("%1: step %2 of %3   about %4 min left")
                              .arg(QString::fromStdString(state.runs[size_t(e.run)].name))
                              .arg(e.step)
                              .arg(e.steps)
                              .arg(left / 60.0, 0, 'f', 1));
        }
        return !cancel_.load();
      });
    } catch (const Cancelled&) {
      cancelled = true;
    }
    Q_EMIT sweepDone(state, cancelled);
  });
}

}  // namespace unipool::studio
