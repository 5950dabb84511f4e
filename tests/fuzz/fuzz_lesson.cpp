// A lesson file (docs/lessons.md's format): parsed into a lesson or refused with a LessonError
// that names a line inside the file.
#include <QString>
#include <cstdlib>

#include "fuzz_input.h"
#include "session/lessons/lesson.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const QString markdown = QString::fromUtf8(reinterpret_cast<const char*>(data), qsizetype(size));
  unipool::studio::LessonError error;
  const auto lesson = unipool::studio::parseLesson(markdown, QStringLiteral("fuzz.md"), &error);
  if (!lesson) {
    if (error.message.isEmpty()) std::abort();
    if (error.line < 0 || error.line > markdown.count(QLatin1Char('\n')) + 1) std::abort();
  }
  return 0;
}
