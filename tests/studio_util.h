// Helpers shared by the studio's offscreen tests: small runs and waiting on the worker.
#pragma once

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QStandardPaths>
#include <QtTest>

#include "session/run_session.h"
#include "unipool/config.h"

namespace studio_test {

// The tiny preset on a smaller built-in corpus: a step takes a few milliseconds.
inline unipool::Preset tiny_preset() {
  unipool::Preset p = unipool::preset("tiny");
  p.train.total_steps = 400;
  return p;
}

inline unipool::DataSpec small_data() {
  unipool::DataSpec d;
  d.builtin_bytes = 300000;
  return d;
}

inline void create_tiny(unipool::studio::RunSession& s) {
  const unipool::Preset p = tiny_preset();
  s.post(unipool::studio::cmd::CreateRun{p.model, p.train, small_data(), QStringLiteral("tiny")});
}

// Processes events until `done()` or `ms` pass; true when done.
template <class F>
bool wait_until(F done, int ms = 30000) {
  QElapsedTimer t;
  t.start();
  while (!done()) {
    if (t.elapsed() > ms) return false;
    QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    QTest::qWait(5);
  }
  return true;
}

// Trains `steps` steps and waits until the worker has stopped and its updates have arrived.
inline bool train(unipool::studio::RunSession& s, int64_t steps) {
  if (!wait_until([&] { return s.state().valid; })) return false;
  const int64_t target = s.state().step + steps;
  s.post(unipool::studio::cmd::RunUntil{target});
  return wait_until([&] { return !s.isRunning() && s.history().lastStep() >= target; });
}

}  // namespace studio_test
