#include "session/run_recipe.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <cmath>
#include <limits>

namespace unipool::studio {

namespace {

const QString kFormat = QStringLiteral("unipool-recipe");
constexpr int kVersion = 1;

struct RecipeError {
  QString message;
};

QJsonObject parseObject(const std::string& json) {
  return QJsonDocument::fromJson(QByteArray::fromStdString(json)).object();
}

std::string dump(const QJsonValue& v) {
  return QJsonDocument(v.toObject()).toJson(QJsonDocument::Compact).toStdString();
}

const QJsonValue& need(const QJsonValue& v, const QString& field, bool ok) {
  if (!ok)
    throw RecipeError{QStringLiteral("field '%1' is missing or has the wrong type").arg(field)};
  return v;
}

double numberField(const QJsonObject& o, const QString& key, const QString& where) {
  const QJsonValue v = o.value(key);
  return need(v, where + "." + key, v.isDouble()).toDouble();
}

// A whole number in [lo, hi]: casting a double outside an integer's range is undefined, and a
// fractional step or k is no recipe's.
int64_t wholeNumber(const QJsonValue& v, const QString& field, int64_t lo, int64_t hi) {
  const double d = need(v, field, v.isDouble()).toDouble();
  if (!(d >= double(lo) && d <= double(hi)) || d != std::floor(d))
    throw RecipeError{QStringLiteral("field '%1' must be a whole number from %2 to %3")
                          .arg(field)
                          .arg(lo)
                          .arg(hi)};
  return int64_t(d);
}

int64_t wholeField(const QJsonObject& o, const QString& key, const QString& where, int64_t lo,
                   int64_t hi) {
  return wholeNumber(o.value(key), where + "." + key, lo, hi);
}

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
constexpr int64_t kMaxExactDouble = int64_t(1) << 53;  // JSON numbers are doubles

LiveSetting settingFromJson(const QJsonObject& o, const QString& where) {
  const QString kind = o.value(QStringLiteral("kind")).toString();
  if (kind == QLatin1String("learning_rate")) return LearningRate{numberField(o, "peak", where)};
  if (kind == QLatin1String("aux_coef")) return AuxCoef{numberField(o, "value", where)};
  if (kind == QLatin1String("z_coef")) return ZCoef{numberField(o, "value", where)};
  if (kind == QLatin1String("top_k")) return TopK{int(wholeField(o, "k", where, 0, kMaxInt))};
  if (kind == QLatin1String("freeze")) return FreezeNow{};
  if (kind == QLatin1String("lock")) return LockNow{};
  if (kind == QLatin1String("random_routing")) {
    const QJsonValue v = o.value(QStringLiteral("layers"));
    RandomLayers r;
    for (const QJsonValue& b : need(v, where + ".layers", v.isArray()).toArray())
      r.layers.push_back(need(b, where + ".layers", b.isBool()).toBool());
    return r;
  }
  if (kind == QLatin1String("pool_resized")) {
    PoolSize p{int(wholeField(o, "experts_per_group", where, 0, kMaxInt)), {}};
    const QJsonValue v = o.value(QStringLiteral("drop"));
    for (const QJsonValue& d : need(v, where + ".drop", v.isArray()).toArray())
      p.drop.push_back(int(wholeNumber(d, where + ".drop", 0, kMaxInt)));
    return p;
  }
  throw RecipeError{QStringLiteral("%1: unknown setting kind '%2'").arg(where, kind)};
}

}  // namespace

QJsonValue settingToJson(const LiveSetting& setting) {
  QJsonObject o;
  o[QStringLiteral("kind")] = QString::fromStdString(setting_kind(setting));
  std::visit(
      [&o](const auto& s) {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, LearningRate>) o[QStringLiteral("peak")] = s.peak;
        if constexpr (std::is_same_v<T, AuxCoef> || std::is_same_v<T, ZCoef>)
          o[QStringLiteral("value")] = s.value;
        if constexpr (std::is_same_v<T, TopK>) o[QStringLiteral("k")] = s.k;
        if constexpr (std::is_same_v<T, RandomLayers>) {
          QJsonArray layers;
          for (bool b : s.layers) layers.append(b);
          o[QStringLiteral("layers")] = layers;
        }
        if constexpr (std::is_same_v<T, PoolSize>) {
          o[QStringLiteral("experts_per_group")] = s.experts_per_group;
          QJsonArray drop;
          for (int d : s.drop) drop.append(d);
          o[QStringLiteral("drop")] = drop;
        }
      },
      setting);
  return o;
}

QByteArray recipeToJson(const RunRecipe& r) {
  QJsonObject o;
  o[QStringLiteral("format")] = kFormat;
  o[QStringLiteral("version")] = kVersion;
  o[QStringLiteral("label")] = r.label;
  o[QStringLiteral("steps")] = double(r.steps);
  o[QStringLiteral("config")] = parseObject(to_json(r.config));
  o[QStringLiteral("train")] = parseObject(to_json(r.options));
  // Seeds travel as text: a JSON number is a double, exact only up to 2^53.
  o[QStringLiteral("data")] =
      QJsonObject{{QStringLiteral("path"), QString::fromStdString(r.data.path)},
                  {QStringLiteral("builtin_bytes"), double(r.data.builtin_bytes)},
                  {QStringLiteral("builtin_seed"), QString::number(r.data.builtin_seed)}};
  QJsonArray timeline;
  for (const TimedSetting& t : r.timeline) {
    QJsonObject e = settingToJson(t.setting).toObject();
    e[QStringLiteral("step")] = double(t.step);
    timeline.append(e);
  }
  o[QStringLiteral("timeline")] = timeline;
  return QJsonDocument(o).toJson(QJsonDocument::Indented);
}

std::optional<RunRecipe> recipeFromJson(const QByteArray& json, QString* error) {
  QJsonParseError parse{};
  const QJsonDocument doc = QJsonDocument::fromJson(json, &parse);
  if (parse.error != QJsonParseError::NoError) {
    const QByteArray before = json.left(parse.offset);
    const int line = int(before.count('\n')) + 1;
    const int column = int(parse.offset - (before.lastIndexOf('\n') + 1)) + 1;
    if (error)
      *error = QStringLiteral("not valid JSON at line %1, column %2: %3")
                   .arg(line)
                   .arg(column)
                   .arg(parse.errorString());
    return std::nullopt;
  }
  try {
    const QJsonObject o = doc.object();
    if (o.value(QStringLiteral("format")).toString() != kFormat)
      throw RecipeError{
          QStringLiteral("not a UniPool run recipe (no \"format\": \"%1\")").arg(kFormat)};
    if (o.value(QStringLiteral("version")).toInt() != kVersion)
      throw RecipeError{QStringLiteral("recipe version %1 is not supported (this studio reads %2)")
                            .arg(o.value(QStringLiteral("version")).toInt())
                            .arg(kVersion)};
    RunRecipe r;
    r.label = o.value(QStringLiteral("label")).toString();
    r.steps = wholeField(o, QStringLiteral("steps"), QStringLiteral("recipe"), 0, kMaxExactDouble);
    const QJsonValue config = o.value(QStringLiteral("config"));
    const QJsonValue train = o.value(QStringLiteral("train"));
    const QJsonObject data = need(o.value("data"), "data", o.value("data").isObject()).toObject();
    try {
      r.config = config_from_json(dump(need(config, "config", config.isObject())));
      r.options = train_options_from_json(dump(need(train, "train", train.isObject())));
    } catch (const std::exception& e) {
      throw RecipeError{QString::fromUtf8(e.what())};
    }
    r.data.path = data.value(QStringLiteral("path")).toString().toStdString();
    r.data.builtin_bytes =
        wholeField(data, QStringLiteral("builtin_bytes"), QStringLiteral("data"), 0, kMaxExactDouble);
    bool ok = false;
    r.data.builtin_seed = data.value(QStringLiteral("builtin_seed")).toString().toULongLong(&ok);
    need({}, QStringLiteral("data.builtin_seed"), ok);
    const QJsonValue timeline = o.value(QStringLiteral("timeline"));
    int64_t last = 0;
    int i = 0;
    for (const QJsonValue& v : need(timeline, "timeline", timeline.isArray()).toArray()) {
      const QString where = QStringLiteral("timeline[%1]").arg(i++);
      const QJsonObject e = need(v, where, v.isObject()).toObject();
      TimedSetting t{wholeField(e, QStringLiteral("step"), where, -kMaxExactDouble, kMaxExactDouble),
                     settingFromJson(e, where)};
      if (t.step < last || t.step < 0)
        throw RecipeError{
            QStringLiteral("%1: step %2 comes before the previous entry's").arg(where).arg(t.step)};
      last = t.step;
      r.timeline.push_back(std::move(t));
    }
    return r;
  } catch (const RecipeError& e) {
    if (error) *error = e.message;
    return std::nullopt;
  }
}

}  // namespace unipool::studio
