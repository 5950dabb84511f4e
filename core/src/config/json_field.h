// Strict typed access to a JSON object's fields, for the config parsers: a missing key or a
// wrong JSON type is a ConfigError that names the key. Private to core/.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "unipool/config.h"

namespace unipool {

// `what` names the object in messages ("config key", "lock: key").
template <typename T>
T json_field(const nlohmann::json& j, const char* key, const char* what = "config key") {
  const std::string name = std::string(what) + " '" + key + "'";
  if (!j.contains(key)) throw ConfigError(name + " is missing");
  const nlohmann::json& v = j.at(key);
  auto require = [&](bool ok, const char* problem) {
    if (!ok) throw ConfigError(name + problem);
  };
  if constexpr (std::is_same_v<T, bool>) {
    require(v.is_boolean(), " must be true or false");
  } else if constexpr (std::is_integral_v<T>) {
    require(v.is_number_integer(), " must be an integer");
    const auto wide = v.get<int64_t>();
    require(wide >= -(int64_t(1) << 31) && wide < (int64_t(1) << 31), " is too large");
  } else if constexpr (std::is_floating_point_v<T>) {
    require(v.is_number(), " must be a number");
  } else {
    require(v.is_string(), " must be a string");
  }
  return v.get<T>();
}

}  // namespace unipool
