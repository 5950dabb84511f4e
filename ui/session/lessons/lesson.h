// A lesson: a guided walk through the studio for a class, read from a Markdown file with a
// small header (format: docs/lessons.md). Each step says something to the class, sets up the
// run it needs, performs actions (train, switch layers to random, resize the pool, ...), points
// at a widget and states what the class will see as checkable expectations.
//
// Parsing is strict: an unknown key, action, measure or widget is an error that names the line
// and the field, so a teacher's typo is caught when the file is opened, not in front of a class.
#pragma once

#include <QString>
#include <QStringList>
#include <optional>
#include <vector>

namespace unipool::studio {

// The run a step needs; `create` builds it (fields left unset keep the preset's value).
struct LessonRun {
  QString preset = QStringLiteral("default");
  quint64 seed = 1234;
  int batch = 8;
  int seq = 64;
  int steps = 1000;  // the schedule's total (warm-up and cosine decay)
  std::optional<int> pool, top_k;
  std::optional<double> aux, lr;
};

struct LessonAction {
  enum Kind {
    Create,
    Train,
    RandomFrom,
    RandomOff,
    Pool,
    Aux,
    TopK,
    LearningRate,
    Freeze,
    Lock,
    Evaluate,
    ProbeExported,  // export the run as a Hugging Face folder, run the probe on that
    Tab
  };
  Kind kind = Create;
  double value = 0;  // steps, layer, pool size, coefficient, k or rate
  QString tab;       // Tab: one of lessonTabs()
  int line = 0;
  QString describe() const;  // "train 150 steps", "layers 3.. random"
};

// "imbalance > 1.5 | one sentence for the class": a measure of the run after the step's actions
// (lesson_measures.h), compared with a number.
struct LessonExpectation {
  QString measure;
  QString op;  // <, <=, >, >=
  double value = 0;
  QString statement;
  int line = 0;
  bool holds(double measured) const;
  QString describe() const;  // "imbalance > 1.5"
};

struct LessonStep {
  QString title;
  QString text;  // Markdown
  std::optional<LessonRun> run;
  std::vector<LessonAction> actions;
  QString point;  // a widget name of lessonWidgets(), or empty
  std::vector<LessonExpectation> expectations;
  int line = 0;
  bool trains() const;
};

struct Lesson {
  QString title, summary;
  int order = 0;  // position in the Lessons menu
  QString path;
  std::vector<LessonStep> steps;
};

struct LessonError {
  QString path;
  int line = 0;   // 1-based; 0 when the file as a whole is wrong
  QString field;  // the key, action or measure at fault
  QString message;
  QString text() const;  // "router.md, line 12, field 'expect': unknown measure 'imbalanse'"
};

// What a step can point at and open (the views map the names to widgets and tabs).
const QStringList& lessonWidgets();
const QStringList& lessonTabs();

std::optional<Lesson> parseLesson(const QString& markdown, const QString& path, LessonError* error);
std::optional<Lesson> loadLesson(const QString& path, LessonError* error);
// The lessons shipped with the studio (Qt resources under :/lessons), in menu order.
std::vector<Lesson> shippedLessons(QStringList* problems = nullptr);

}  // namespace unipool::studio
