// The JSONL run log (docs/run-log.md): each line parses or throws run_log::Error.
#include "fuzz_input.h"
#include "unipool/run_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    try {
      (void)unipool::run_log::parse_line(text.substr(begin, end - begin));
    } catch (const unipool::run_log::Error&) {
    }
    begin = end + 1;
  }
  return 0;
}
