// Whole numbers from JSON read off disk or downloaded. nlohmann's get<int>() converts a JSON
// float with a C++ cast, which is undefined behaviour when the value is outside the type's
// range (1e300 as an int: found by fuzzing the run log), and narrows wider integers silently.
// These accept a JSON integer that fits the type, and nothing else. Private to core/.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <type_traits>
#include <vector>

namespace unipool::json_numbers {

template <class T>
std::optional<T> whole(const nlohmann::json& v) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>);
  constexpr uint64_t kMax = uint64_t(std::numeric_limits<T>::max());
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > kMax) return std::nullopt;
    return T(u);
  }
  if (!v.is_number_integer()) return std::nullopt;  // a float, a string, ...
  const int64_t s = v.get<int64_t>();
  if constexpr (std::is_unsigned_v<T>) {
    if (s < 0 || uint64_t(s) > kMax) return std::nullopt;
  } else {
    if (s < int64_t(std::numeric_limits<T>::min()) || s > int64_t(kMax)) return std::nullopt;
  }
  return T(s);
}

// An array whose every element is whole<T>; nullopt otherwise.
template <class T>
std::optional<std::vector<T>> whole_array(const nlohmann::json& v) {
  if (!v.is_array()) return std::nullopt;
  std::vector<T> out;
  out.reserve(v.size());
  for (const nlohmann::json& e : v) {
    const std::optional<T> x = whole<T>(e);
    if (!x) return std::nullopt;
    out.push_back(*x);
  }
  return out;
}

}  // namespace unipool::json_numbers
