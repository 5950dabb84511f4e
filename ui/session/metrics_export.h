// A run's metrics as CSV or JSON, for spreadsheets and notebooks.
#pragma once

#include <QByteArray>

namespace unipool::studio {

class RunHistory;
struct RunState;

// One row per recorded step: step,loss,ce,aux,lr,tokens_per_s,applied,valid_ce (valid_ce empty
// where no validation ran at that step), then the changes as "# step kind text" comments.
QByteArray metricsCsv(const RunHistory& history);
// {"config", "options", "steps", "validation", "changes", "routing"}: routing holds the SPEC
// section 5 summary of the latest window.
QByteArray metricsJson(const RunHistory& history, const RunState& state);

}  // namespace unipool::studio
