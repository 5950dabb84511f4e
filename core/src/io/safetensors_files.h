// The two halves of write_safetensors_atomic, for writers that make several files visible in
// an order of their own (a checkpoint pair, io/checkpoint.cpp). Private to core/.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "unipool/safetensors.h"

namespace unipool {

// Writes the file image to a new temporary file beside `path` (named temp_prefix(base of
// path) + "<pid>.<n>"), fsynced and closed; returns its path. On failure removes it and throws
// std::runtime_error "cannot write PATH: <step>: <errno text>".
std::string write_safetensors_temp(const std::string& path,
                                   const std::map<std::string, std::string>& metadata,
                                   const std::vector<TensorRecord>& tensors);
// rename(2), then fsync of the target's directory; throws std::runtime_error naming both.
void rename_durably(const std::string& from, const std::string& to);
// ".<base>.tmp.": what every temporary file of `base` starts with (leftovers of a killed
// writer are recognised by it and by their writer's pid).
std::string temp_prefix(const std::string& base);

}  // namespace unipool
