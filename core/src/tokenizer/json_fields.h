// Reading tokenizer.json's step objects: the error every step throws and its typed fields.
// Private to core/tokenizer.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "io/json_numbers.h"
#include "unipool/tokenizer.h"

namespace unipool::tok {

[[noreturn]] inline void refuse(const std::string& what) { throw TokenizerError("tokenizer.json: " + what); }

inline std::string type_of(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) refuse("a step has no \"type\"");
  return j["type"].get<std::string>();
}

inline std::string string_field(const nlohmann::json& j, const char* key, const std::string& fallback = "") {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_string()) refuse(std::string("\"") + key + "\" is not a string");
  return j[key].get<std::string>();
}

inline bool bool_field(const nlohmann::json& j, const char* key, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) refuse(std::string("\"") + key + "\" is not true or false");
  return j[key].get<bool>();
}

// A token id: a JSON integer in [0, 2^31).
inline int32_t token_id(const nlohmann::json& j) {
  const auto id = json_numbers::whole<int32_t>(j);
  if (!id || *id < 0) refuse("a token id is not a whole number from 0 to 2^31 - 1");
  return *id;
}

}  // namespace unipool::tok
