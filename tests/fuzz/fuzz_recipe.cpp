// A run recipe (.unipool-recipe.json): read into a recipe or refused with a message; a recipe
// that was read writes back to JSON that reads again the same.
#include <QByteArray>
#include <QString>
#include <cstdlib>

#include "fuzz_input.h"
#include "session/run_recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  QString error;
  const auto recipe = unipool::studio::recipeFromJson(
      QByteArray(reinterpret_cast<const char*>(data), qsizetype(size)), &error);
  if (!recipe) {
    if (error.isEmpty()) std::abort();
    return 0;
  }
  const QByteArray written = unipool::studio::recipeToJson(*recipe);
  QString again_error;
  const auto again = unipool::studio::recipeFromJson(written, &again_error);
  if (!again || unipool::studio::recipeToJson(*again) != written) std::abort();
  return 0;
}
