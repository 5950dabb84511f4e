#include "session/metrics_export.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTextStream>
#include <map>

#include "session/run_history.h"

namespace unipool::studio {

namespace {

QJsonObject parse_object(const std::string& json) {
  return QJsonDocument::fromJson(QByteArray::fromStdString(json)).object();
}

}  // namespace

QByteArray metricsCsv(const RunHistory& h) {
  std::map<int64_t, double> valid;
  for (const ValidationPoint& v : h.validation()) valid[v.step] = v.ce;
  QByteArray out;
  QTextStream s(&out);
  s.setRealNumberPrecision(9);
  s << "step,loss,ce,aux,lr,tokens_per_s,applied,valid_ce\n";
  for (const StepPoint& p : h.points()) {
    s << p.step << ',' << p.loss << ',' << p.ce << ',' << p.aux << ',' << p.lr << ','
      << p.tokens_per_s << ',' << (p.applied ? 1 : 0) << ',';
    const auto it = valid.find(p.step);
    if (it != valid.end()) s << it->second;
    s << '\n';
  }
  for (const ChangeEvent& e : h.changes())
    s << "# " << e.step << ' ' << e.kind << ' ' << e.text << '\n';
  s.flush();
  return out;
}

QByteArray metricsJson(const RunHistory& h, const RunState& state) {
  QJsonObject root;
  if (state.valid) {
    root[QStringLiteral("config")] = parse_object(to_json(state.config));
    root[QStringLiteral("options")] = parse_object(to_json(state.options));
    root[QStringLiteral("source")] = state.source;
  }
  QJsonArray steps;
  for (const StepPoint& p : h.points()) {
    steps.append(QJsonObject{{QStringLiteral("step"), qint64(p.step)},
                             {QStringLiteral("loss"), p.loss},
                             {QStringLiteral("ce"), p.ce},
                             {QStringLiteral("aux"), p.aux},
                             {QStringLiteral("lr"), p.lr},
                             {QStringLiteral("tokens_per_s"), p.tokens_per_s},
                             {QStringLiteral("applied"), p.applied}});
  }
  root[QStringLiteral("steps")] = steps;
  QJsonArray valid;
  for (const ValidationPoint& v : h.validation())
    valid.append(
        QJsonObject{{QStringLiteral("step"), qint64(v.step)}, {QStringLiteral("ce"), v.ce}});
  root[QStringLiteral("validation")] = valid;
  QJsonArray changes;
  for (const ChangeEvent& e : h.changes())
    changes.append(QJsonObject{{QStringLiteral("step"), qint64(e.step)},
                               {QStringLiteral("kind"), e.kind},
                               {QStringLiteral("text"), e.text}});
  root[QStringLiteral("changes")] = changes;
  const RoutingCounts latest = h.latestRouting();
  if (!latest.empty()) root[QStringLiteral("routing")] = parse_object(to_json(summarize(latest)));
  return QJsonDocument(root).toJson(QJsonDocument::Indented);
}

}  // namespace unipool::studio
