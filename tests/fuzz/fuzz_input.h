// What every fuzz target shares: the input split into parts, and the rule that a parser may
// only fail with its own documented error (anything else escaping is a bug: the studio shows
// the documented errors as messages, an unexpected exception is a crash or a wrong message).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace unipool::fuzz {

// `data` split at NUL bytes into at most `parts` strings (the last takes the rest), so that one
// input can carry, for example, a config.json and a tensor list.
inline std::vector<std::string> split_input(const uint8_t* data, size_t size, size_t parts) {
  std::vector<std::string> out;
  size_t begin = 0;
  for (size_t i = 0; i < size && out.size() + 1 < parts; ++i) {
    if (data[i] != 0) continue;
    out.emplace_back(reinterpret_cast<const char*>(data) + begin, i - begin);
    begin = i + 1;
  }
  out.emplace_back(reinterpret_cast<const char*>(data) + begin, size - begin);
  while (out.size() < parts) out.emplace_back();
  return out;
}

}  // namespace unipool::fuzz

// libFuzzer's entry point (the replay driver, replay_main.cpp, calls it on each corpus file).
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
