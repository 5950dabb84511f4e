// The Experiments tab's long work, off the window's thread: the random-routing probe of one or
// two checkpoints, and a pool-size sweep in a folder. Both run the core's code
// (unipool/experiments.h), report progress through queued signals and stop on cancel(), which
// the job polls through an atomic flag. A sweep keeps every finished run.
#pragma once

#include <QObject>
#include <QString>
#include <QStringList>
#include <QThread>
#include <atomic>
#include <memory>
#include <vector>

#include "unipool/experiments.h"
#include "unipool/hf_model.h"

namespace unipool::studio {

class ExperimentJobs : public QObject {
  Q_OBJECT
 public:
  explicit ExperimentJobs(QObject* parent = nullptr);
  ~ExperimentJobs() override;  // cancels and joins the running job

  bool busy() const { return thread_ != nullptr; }
  // Probes each checkpoint on its validation text (or `text` when not empty).
  void startProbe(const QStringList& checkpoints, const QStringList& labels, int seeds,
                  int64_t max_windows);
  // The probe on a downloaded model (unipool/hf_model.h) over `ids`: random routing in each
  // MoE layer and from each down, `seeds` draws; progress counts inside each evaluation, so
  // Cancel and the time left work on a large model.
  void startDownloadedProbe(std::shared_ptr<const HfModel> model, std::vector<int32_t> ids,
                            const QString& label, int seq, int seeds, int64_t max_windows);
  // Opens (or reopens, to resume) `dir` with `spec` and trains what is not done.
  void startSweep(const QString& dir, const SweepSpec& spec, int parallel);
  void cancel();

 Q_SIGNALS:
  void progress(double fraction, const QString& text);
  // A sweep's run moved: its step and training CE (for the small curves).
  void sweepStep(int run, qint64 step, double ce);
  void sweepState(const unipool::SweepState& state);  // after open and after each run
  void probeDone(const std::vector<unipool::ProbeResult>& results);
  void sweepDone(const unipool::SweepState& state, bool cancelled);
  void failed(const QString& message);

 private:
  template <class Work>
  void launch(Work work);
  void finished();

  QThread* thread_ = nullptr;
  std::atomic<bool> cancel_{false};
};

}  // namespace unipool::studio

Q_DECLARE_METATYPE(unipool::SweepState)
Q_DECLARE_METATYPE(std::vector<unipool::ProbeResult>)
