// The lock config's JSON and checks, for config.cpp. Private to core/.
#pragma once

#include <nlohmann/json.hpp>

#include "unipool/config.h"

namespace unipool {

// Throws ConfigError ("lock: ...") when a lock run's config breaks SPEC section 8's rules.
void validate_lock(const ModelConfig& config);
nlohmann::json lock_to_json(const LockConfig& lock);
LockConfig lock_from_json(const nlohmann::json& j);  // enabled = true

}  // namespace unipool
