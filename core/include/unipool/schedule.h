// The learning-rate schedule of a run.
#pragma once

#include <cstdint>

#include "unipool/config.h"

namespace unipool {

// Learning rate at `step` (0-based): linear warm-up, then cosine to lr * min_lr_ratio.
double learning_rate_at(const TrainOptions& options, int64_t step);

}  // namespace unipool
