// Follows the JSONL log of a run the studio does not host (`unipool train --log FILE
// --log-routing-every N`, on this machine or on a cluster through a shared or synced folder)
// and turns it into what a hosted run sends: the RunState from the log's header line, loss
// points, routing windows and validation points. It reads only what was appended since the
// last poll, so a finished log and a growing one look the same; a log that is truncated or
// replaced starts over. Qt Core only.
#pragma once

#include <QObject>
#include <QString>
#include <QTimer>

#include "session/run_types.h"

namespace unipool::studio {

class RunLogFollower : public QObject {
  Q_OBJECT
 public:
  explicit RunLogFollower(QObject* parent = nullptr);

  // Starts following `path` (polls every `interval_ms`); false with *error when it cannot be
  // read or does not start with a UniPool run header.
  bool follow(const QString& path, QString* error, int interval_ms = 500);
  // Whether `path` starts with a UniPool run header (reads its first line only).
  static bool isRunLog(const QString& path, QString* error);
  void stop();
  const QString& path() const { return path_; }
  bool following() const { return timer_.isActive(); }
  // Reads what was appended now (the timer calls it; tests call it directly).
  void poll();

 Q_SIGNALS:
  void started();  // a new run: what was shown before belongs to another
  void stateChanged(const unipool::studio::RunState& state);
  void trainingUpdate(const unipool::studio::TrainingUpdate& update);
  void validated(const unipool::studio::ValidationPoint& point);
  void problem(const QString& message);  // a line that is not a run log's (reported once)
  void checkpointSaved(const QString& path);  // the run wrote its checkpoint (again)
  // A backlog is being read (a long log opened, or gigabytes appended at once): `read` of
  // `size` bytes so far. The rest arrives over the next polls, each at most kReadPerPoll.
  void catchingUp(qint64 read, qint64 size);

 private:
  bool handleLine(const QByteArray& line);
  void warnOnce(const QString& message);

  // Bytes read per poll: a few hundred ms of parsing, so the window stays responsive while a
  // large backlog is read (the next poll comes at once while one is left).
  static constexpr qint64 kReadPerPoll = 16 << 20;
  // A line longer than this is no run log record (a routing window of the largest allowed
  // model is far smaller): dropped up to its newline rather than held in memory.
  static constexpr qint64 kMaxLineBytes = 64 << 20;

  QString path_;
  QTimer timer_;
  qint64 offset_ = 0;
  QByteArray partial_;  // an unfinished last line, kept until its newline arrives
  bool dropping_ = false;  // inside an overlong line: skip to its newline
  RunState state_;
  TrainingUpdate pending_;
  bool warned_ = false;
  uint64_t headers_ = 0;  // run headers read: each gives the watched run a new serial
};

}  // namespace unipool::studio
