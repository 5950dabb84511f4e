// The JSONL run log that `unipool train --log FILE` appends and `unipool-studio --watch FILE`
// follows (format: docs/run-log.md). One JSON object per line: the run header first, then a
// step record per step (with a routing window every N steps), and a saved record whenever the
// checkpoint is written. This is the one place that writes and reads the format.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "unipool/config.h"
#include "unipool/engine.h"
#include "unipool/stats.h"

namespace unipool::run_log {

// A line that is not a record of this format (malformed JSON, a missing or mistyped field):
// readers skip it and go on (a torn last line after a crash is one).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The first line: what run this is (a watcher needs the model's shape to draw anything).
struct Header {
  ModelConfig config;
  TrainOptions train;
  std::string data;  // the training text's path; empty: the built-in corpus
  int64_t from_step = 0;
  int world_size = 1;
  std::string compute;  // e.g. "cpu, 1 thread, fused"
};

// One training step. The routing summary and diagnostics are written for people reading the
// log; a reader gets the raw routing window back (when the step carries one) and derives them.
struct Step {
  int64_t step = 0;
  double loss = 0, ce = 0, aux = 0, z_loss = 0, lr = 0, grad_norm = 0;
  bool applied = true;
  double seconds = 0, tokens_per_s = 0;
  bool has_valid_loss = false;
  double valid_loss = 0;
  std::string phase;  // UniPool-lock's phase name; empty for other runs
  double entropy_loss = 0;
  std::string event, message;  // "freeze", "lock", "fail-stop"
  RoutingCounts routing;       // empty unless the writer added the window
};

// The checkpoint was written (again).
struct Saved {
  std::string path;  // absolute when written
  int64_t at_step = 0;
};

// Each writer returns one line without its newline.
std::string header_line(const Header& header);
// `owned`: a lock run's partition once frozen (its diagnostics count routes outside it).
// `with_routing`: add the step's raw routing window (for a watcher's heatmap).
std::string step_line(const StepMetrics& metrics, const std::vector<std::vector<int>>* owned,
                      bool with_routing);
std::string saved_line(const Saved& saved);

struct Record {
  enum class Kind { Header, Step, Saved } kind = Kind::Step;
  Header header;
  Step step;
  Saved saved;
};
// Parses one line (without its newline); throws run_log::Error for anything else, with what
// was wrong. A routing window whose arrays do not match its shape is an error too.
Record parse_line(const std::string& line);

}  // namespace unipool::run_log
