// What the window remembers of one run: loss points, validation points, routing snapshots and
// the user's changes. Bounded: an hour-long session costs the same memory as a ten-minute one,
// because old points are merged in pairs and old snapshots thinned when a cap is reached.
#pragma once

#include <QObject>
#include <cstddef>
#include <vector>

#include "session/run_types.h"

namespace unipool::studio {

// The routing of `steps` consecutive training steps ending at `step`.
struct RoutingSnapshot {
  int64_t step = 0;
  int64_t steps = 0;
  RoutingCounts counts;
};

class RunHistory : public QObject {
  Q_OBJECT
 public:
  struct Limits {
    size_t max_points = 20000;   // loss points; pairs are averaged beyond this
    size_t max_snapshots = 400;  // routing snapshots; every other old one is dropped beyond
    int snapshot_every = 10;     // steps per snapshot (doubles each time snapshots are thinned)
  };
  explicit RunHistory(QObject* parent = nullptr);
  RunHistory(const Limits& limits, QObject* parent = nullptr);

  void clear();
  void addUpdate(const TrainingUpdate& update);
  void addValidation(const ValidationPoint& point);
  void addChange(const ChangeEvent& event);
  // Closes the routing window being filled, so that the next steps start a new one (a lesson
  // step measures the routing of its own steps).
  void cutWindow();

  const std::vector<StepPoint>& points() const { return points_; }
  const std::vector<ValidationPoint>& validation() const { return validation_; }
  const std::vector<ChangeEvent>& changes() const { return changes_; }
  const std::vector<RoutingSnapshot>& snapshots() const { return snapshots_; }
  // Routing since the start of the run (or its last change of pool size / top-k).
  const RoutingCounts& cumulative() const { return cumulative_; }
  // The newest routing: the open window if it has steps, else the last snapshot.
  RoutingCounts latestRouting() const;
  // The window being filled (steps == 0 when empty).
  const RoutingSnapshot& openWindow() const { return open_; }
  int64_t lastStep() const { return last_step_; }
  int snapshotEvery() const { return snapshot_every_; }
  size_t approximateBytes() const;

 Q_SIGNALS:
  void changed();
  void snapshotsChanged();

 private:
  void addRouting(const RoutingCounts& counts, int64_t step, int64_t steps);
  void closeWindow();
  void compactPoints();
  void thinSnapshots();

  Limits limits_;
  int snapshot_every_;
  std::vector<StepPoint> points_;
  std::vector<ValidationPoint> validation_;
  std::vector<ChangeEvent> changes_;
  std::vector<RoutingSnapshot> snapshots_;
  RoutingSnapshot open_;  // the window being filled
  RoutingCounts cumulative_;
  int64_t last_step_ = 0;
};

}  // namespace unipool::studio
