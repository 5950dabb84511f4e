// What a lesson's expectations measure: plain figures of the run a RunSession holds, taken
// after a step's actions. Each is something the class can see on the screen at that moment.
#pragma once

#include <QString>
#include <QStringList>
#include <optional>

namespace unipool::studio {

class RunSession;

// Where the lesson step began, so that a measure can speak of "this step's" training.
struct MeasureBaseline {
  int64_t step = 0;                  // the engine's step when the step's actions began
  std::optional<double> loss;        // `loss` then, when the run had trained
  std::optional<double> valid_loss;  // the last validation then
};

// The measures, with one line each for the lesson format's documentation.
const QStringList& lessonMeasures();
QString measureMeaning(const QString& name);

// The measure's value now; nullopt with *why when the run cannot give it (no run, no routing
// recorded during the step, no partition yet, ...).
std::optional<double> measureRun(const QString& name, const RunSession& session,
                                 const MeasureBaseline& baseline, QString* why);
// The baseline of a step that starts now.
MeasureBaseline baselineNow(const RunSession& session);

}  // namespace unipool::studio
