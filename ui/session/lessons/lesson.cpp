#include "session/lessons/lesson.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>
#include <algorithm>
#include <cmath>

#include "session/lessons/lesson_measures.h"
#include "unipool/config.h"

namespace unipool::studio {

namespace {

// Thrown inside the parser only; parseLesson turns it into a LessonError.
struct ParseFailure {
  int line;
  QString field, message;
};

[[noreturn]] void fail(int line, const QString& field, const QString& message) {
  throw ParseFailure{line, field, message};
}

double number(const QString& text, int line, const QString& field) {
  bool ok = false;
  const double v = text.toDouble(&ok);
  if (!ok || !std::isfinite(v)) fail(line, field, QStringLiteral("'%1' is not a number").arg(text));
  return v;
}

int whole(const QString& text, int line, const QString& field, int low, int high) {
  bool ok = false;
  const int v = text.toInt(&ok);
  if (!ok || v < low || v > high)
    fail(line, field,
         QStringLiteral("'%1' is not a whole number in %2..%3").arg(text).arg(low).arg(high));
  return v;
}

LessonRun parseRun(const QString& value, int line) {
  LessonRun run;
  const QStringList parts = value.split(QLatin1Char(' '), Qt::SkipEmptyParts);
  if (parts.isEmpty()) fail(line, QStringLiteral("run"), QStringLiteral("empty run"));
  for (const QString& part : parts) {
    const int eq = part.indexOf(QLatin1Char('='));
    if (eq <= 0)
      fail(line, QStringLiteral("run"), QStringLiteral("'%1' is not key=value").arg(part));
    const QString key = part.left(eq), v = part.mid(eq + 1);
    if (key == QLatin1String("preset")) {
      const auto& names = preset_names();
      if (std::find(names.begin(), names.end(), v.toStdString()) == names.end())
        fail(line, key, QStringLiteral("unknown preset '%1'").arg(v));
      run.preset = v;
    } else if (key == QLatin1String("seed")) {
      run.seed = quint64(whole(v, line, key, 0, 2000000000));
    } else if (key == QLatin1String("batch")) {
      run.batch = whole(v, line, key, 1, 4096);
    } else if (key == QLatin1String("seq")) {
      run.seq = whole(v, line, key, 2, 4096);
    } else if (key == QLatin1String("steps")) {
      run.steps = whole(v, line, key, 1, 1000000);
    } else if (key == QLatin1String("pool")) {
      run.pool = whole(v, line, key, 1, 4096);
    } else if (key == QLatin1String("top_k")) {
      run.top_k = whole(v, line, key, 1, 64);
    } else if (key == QLatin1String("aux")) {
      run.aux = number(v, line, key);
    } else if (key == QLatin1String("lr")) {
      run.lr = number(v, line, key);
    } else {
      fail(line, key,
           QStringLiteral("unknown run field (preset, seed, batch, seq, steps, pool, "
                          "top_k, aux, lr)"));
    }
  }
  return run;
}

LessonAction parseAction(const QString& value, int line) {
  const QStringList w = value.split(QLatin1Char(' '), Qt::SkipEmptyParts);
  const QString field = QStringLiteral("do");
  if (w.isEmpty()) fail(line, field, QStringLiteral("empty action"));
  LessonAction a;
  a.line = line;
  const QString& verb = w[0];
  auto argument = [&](int n) {
    if (w.size() != n + 1)
      fail(line, field, QStringLiteral("'%1' takes %2 argument(s)").arg(verb).arg(n));
  };
  if (verb == QLatin1String("create")) {
    argument(0);
    a.kind = LessonAction::Create;
  } else if (verb == QLatin1String("train")) {
    argument(1);
    a.kind = LessonAction::Train;
    a.value = whole(w[1], line, field, 1, 100000);
  } else if (verb == QLatin1String("random")) {
    if (w.size() == 2 && w[1] == QLatin1String("off")) {
      a.kind = LessonAction::RandomOff;
    } else if (w.size() == 3 && w[1] == QLatin1String("from")) {
      a.kind = LessonAction::RandomFrom;
      a.value = whole(w[2], line, field, 0, 1024);
    } else {
      fail(line, field, QStringLiteral("write 'random from LAYER' or 'random off'"));
    }
  } else if (verb == QLatin1String("pool")) {
    argument(1);
    a.kind = LessonAction::Pool;
    a.value = whole(w[1], line, field, 1, 4096);
  } else if (verb == QLatin1String("aux")) {
    argument(1);
    a.kind = LessonAction::Aux;
    a.value = number(w[1], line, field);
  } else if (verb == QLatin1String("top_k")) {
    argument(1);
    a.kind = LessonAction::TopK;
    a.value = whole(w[1], line, field, 1, 64);
  } else if (verb == QLatin1String("lr")) {
    argument(1);
    a.kind = LessonAction::LearningRate;
    a.value = number(w[1], line, field);
  } else if (verb == QLatin1String("freeze") || verb == QLatin1String("lock") ||
             verb == QLatin1String("evaluate")) {
    argument(0);
    a.kind = verb == QLatin1String("freeze") ? LessonAction::Freeze
             : verb == QLatin1String("lock") ? LessonAction::Lock
                                             : LessonAction::Evaluate;
  } else if (verb == QLatin1String("probe")) {
    if (w.size() != 2 || w[1] != QLatin1String("exported"))
      fail(line, field, QStringLiteral("write 'probe exported'"));
    a.kind = LessonAction::ProbeExported;
  } else if (verb == QLatin1String("tab")) {
    argument(1);
    if (!lessonTabs().contains(w[1]))
      fail(line, field, QStringLiteral("unknown tab '%1' (%2)").arg(w[1], lessonTabs().join(", ")));
    a.kind = LessonAction::Tab;
    a.tab = w[1];
  } else {
    fail(line, field,
         QStringLiteral("unknown action '%1' (create, train N, random from L, random off, pool N, "
                        "aux X, top_k K, lr X, freeze, lock, evaluate, probe exported, tab NAME)")
             .arg(verb));
  }
  return a;
}

LessonExpectation parseExpectation(const QString& value, int line) {
  static const QRegularExpression form(
      QStringLiteral(R"(^([a-z_]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*\|\s*(\S.*)$)"));
  const QString field = QStringLiteral("expect");
  const auto m = form.match(value);
  if (!m.hasMatch())
    fail(line, field, QStringLiteral("write 'MEASURE OP NUMBER | what the class will see'"));
  LessonExpectation e;
  e.measure = m.captured(1);
  if (!lessonMeasures().contains(e.measure))
    fail(line, field,
         QStringLiteral("unknown measure '%1' (%2)").arg(e.measure, lessonMeasures().join(", ")));
  e.op = m.captured(2);
  e.value = number(m.captured(3), line, field);
  e.statement = m.captured(4).trimmed();
  e.line = line;
  return e;
}

// `key: value` at the start of a line; the key is lower case letters.
bool splitKey(const QString& line, QString* key, QString* value) {
  static const QRegularExpression form(QStringLiteral(R"(^([a-z_]+):\s*(.*)$)"));
  const auto m = form.match(line);
  if (!m.hasMatch()) return false;
  *key = m.captured(1);
  *value = m.captured(2).trimmed();
  return true;
}

Lesson parse(const QStringList& lines) {
  Lesson lesson;
  int i = 0;
  while (i < lines.size() && lines[i].trimmed().isEmpty()) ++i;
  if (i >= lines.size() || lines[i].trimmed() != QLatin1String("---"))  // (a blank file: line 1)
    fail(std::min(i + 1, int(lines.size())), QStringLiteral("header"),
         QStringLiteral("a lesson starts with a '---' header"));
  for (++i;; ++i) {
    if (i >= lines.size())
      fail(1, QStringLiteral("header"), QStringLiteral("the header is not closed by '---'"));
    const QString line = lines[i].trimmed();
    if (line == QLatin1String("---")) break;
    if (line.isEmpty()) continue;
    QString key, value;
    if (!splitKey(line, &key, &value))
      fail(i + 1, QStringLiteral("header"), QStringLiteral("expected 'key: value'"));
    if (key == QLatin1String("title"))
      lesson.title = value;
    else if (key == QLatin1String("summary"))
      lesson.summary = value;
    else if (key == QLatin1String("order"))
      lesson.order = whole(value, i + 1, key, 0, 1000);
    else
      fail(i + 1, key, QStringLiteral("unknown header field (title, summary, order)"));
  }
  if (lesson.title.isEmpty())
    fail(1, QStringLiteral("title"), QStringLiteral("the header has no title"));
  ++i;
  LessonStep* step = nullptr;
  bool in_keys = false;
  QStringList text;
  auto close = [&] {
    if (step) step->text = text.join(QLatin1Char('\n')).trimmed();
    text.clear();
  };
  for (; i < lines.size(); ++i) {
    const QString& raw = lines[i];
    const int no = i + 1;
    if (raw.startsWith(QLatin1String("## "))) {
      close();
      lesson.steps.emplace_back();
      step = &lesson.steps.back();
      step->title = raw.mid(3).trimmed();
      step->line = no;
      in_keys = true;
      continue;
    }
    if (!step) {
      if (!raw.trimmed().isEmpty())
        fail(no, QStringLiteral("step"), QStringLiteral("text before the first '## ' step"));
      continue;
    }
    QString key, value;
    if (in_keys && splitKey(raw, &key, &value)) {
      if (key == QLatin1String("run")) {
        if (step->run) fail(no, key, QStringLiteral("a step has one run"));
        step->run = parseRun(value, no);
      } else if (key == QLatin1String("do")) {
        step->actions.push_back(parseAction(value, no));
      } else if (key == QLatin1String("point")) {
        if (!lessonWidgets().contains(value))
          fail(no, key,
               QStringLiteral("unknown widget '%1' (%2)").arg(value, lessonWidgets().join(", ")));
        step->point = value;
      } else if (key == QLatin1String("expect")) {
        step->expectations.push_back(parseExpectation(value, no));
      } else {
        fail(no, key, QStringLiteral("unknown step field (run, do, point, expect)"));
      }
      continue;
    }
    in_keys = false;  // the first other line starts the step's text
    text << raw;
  }
  close();
  if (lesson.steps.empty())
    fail(int(lines.size()), QStringLiteral("step"),
         QStringLiteral("the lesson has no '## ' steps"));
  // A run must exist before anything acts on it: the first acting step creates one.
  bool created = false;
  for (const LessonStep& s : lesson.steps) {
    for (const LessonAction& a : s.actions) {
      if (a.kind == LessonAction::Create) {
        if (!s.run && !created)
          fail(a.line, QStringLiteral("do"),
               QStringLiteral("'create' needs a 'run:' in its step or an earlier one"));
        created = true;
      } else if (a.kind != LessonAction::Tab && !created) {
        fail(a.line, QStringLiteral("do"),
             QStringLiteral("'%1' before any 'create'").arg(a.describe()));
      }
    }
    if (!s.expectations.empty() && !created)
      fail(s.expectations.front().line, QStringLiteral("expect"),
           QStringLiteral("an expectation before any 'create'"));
  }
  return lesson;
}

}  // namespace

QString LessonAction::describe() const {
  switch (kind) {
    case Create:
      return QStringLiteral("create the run");
    case Train:
      return QStringLiteral("train %1 steps").arg(int(value));
    case RandomFrom:
      return QStringLiteral("layers %1.. random").arg(int(value));
    case RandomOff:
      return QStringLiteral("all layers learned");
    case Pool:
      return QStringLiteral("pool size %1").arg(int(value));
    case Aux:
      return QStringLiteral("aux coefficient %1").arg(value);
    case TopK:
      return QStringLiteral("top-k %1").arg(int(value));
    case LearningRate:
      return QStringLiteral("learning rate %1").arg(value);
    case Freeze:
      return QStringLiteral("freeze now");
    case Lock:
      return QStringLiteral("lock now");
    case Evaluate:
      return QStringLiteral("evaluate the validation text");
    case ProbeExported:
      return QStringLiteral("export as a downloaded model and probe it");
    case Tab:
      return QStringLiteral("open the %1 tab").arg(tab);
  }
  return {};
}

bool LessonExpectation::holds(double measured) const {
  if (!std::isfinite(measured)) return false;
  if (op == QLatin1String("<")) return measured < value;
  if (op == QLatin1String("<=")) return measured <= value;
  if (op == QLatin1String(">")) return measured > value;
  return measured >= value;
}

QString LessonExpectation::describe() const {
  return QStringLiteral("%1 %2 %3").arg(measure, op).arg(value);
}

bool LessonStep::trains() const {
  return std::any_of(actions.begin(), actions.end(),
                     [](const LessonAction& a) { return a.kind == LessonAction::Train; });
}

QString LessonError::text() const {
  const QString file = QFileInfo(path).fileName();
  if (line <= 0) return QStringLiteral("%1: %2").arg(file, message);
  return QStringLiteral("%1, line %2, field '%3': %4").arg(file).arg(line).arg(field, message);
}

const QStringList& lessonWidgets() {
  static const QStringList names = {
      QStringLiteral("heatmap"), QStringLiteral("balance"),     QStringLiteral("loss"),
      QStringLiteral("tokens"),  QStringLiteral("controls"),    QStringLiteral("live"),
      QStringLiteral("form"),    QStringLiteral("experiments"), QStringLiteral("compare")};
  return names;
}

const QStringList& lessonTabs() {
  static const QStringList names = {QStringLiteral("routing"),    QStringLiteral("tokens"),
                                    QStringLiteral("domains"),    QStringLiteral("compare"),
                                    QStringLiteral("checkpoint"), QStringLiteral("experiments"),
                                    QStringLiteral("downloaded")};
  return names;
}

std::optional<Lesson> parseLesson(const QString& markdown, const QString& path,
                                  LessonError* error) {
  try {
    Lesson lesson = parse(markdown.split(QLatin1Char('\n')));
    lesson.path = path;
    return lesson;
  } catch (const ParseFailure& f) {
    if (error) *error = LessonError{path, f.line, f.field, f.message};
    return std::nullopt;
  }
}

std::optional<Lesson> loadLesson(const QString& path, LessonError* error) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    if (error)
      *error = LessonError{path, 0, {}, QStringLiteral("cannot read: %1").arg(file.errorString())};
    return std::nullopt;
  }
  const QByteArray bytes = file.read(1 << 20);
  if (!file.atEnd()) {
    if (error) *error = LessonError{path, 0, {}, QStringLiteral("larger than 1 MiB: not a lesson")};
    return std::nullopt;
  }
  const QString text = QString::fromUtf8(bytes);
  if (text.contains(QChar::ReplacementCharacter) || bytes.contains('\0')) {
    if (error) *error = LessonError{path, 0, {}, QStringLiteral("not UTF-8 text")};
    return std::nullopt;
  }
  return parseLesson(text, path, error);
}

std::vector<Lesson> shippedLessons(QStringList* problems) {
  std::vector<Lesson> lessons;
  const QDir dir(QStringLiteral(":/lessons"));
  for (const QString& name : dir.entryList({QStringLiteral("*.md")}, QDir::Files, QDir::Name)) {
    LessonError error;
    if (auto lesson = loadLesson(dir.filePath(name), &error)) {
      lessons.push_back(std::move(*lesson));
    } else if (problems) {
      problems->append(error.text());
    }
  }
  std::stable_sort(lessons.begin(), lessons.end(),
                   [](const Lesson& a, const Lesson& b) { return a.order < b.order; });
  return lessons;
}

}  // namespace unipool::studio
