// Thrown when long work (a probe, a sweep, opening a big checkpoint) is cancelled through its
// progress callback.
#pragma once

#include <stdexcept>

namespace unipool {

class Cancelled : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace unipool
