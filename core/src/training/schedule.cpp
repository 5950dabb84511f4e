// The learning-rate schedule: linear warm-up, then cosine to lr * min_lr_ratio.
#include "unipool/schedule.h"

#include <algorithm>
#include <cmath>

namespace unipool {

double learning_rate_at(const TrainOptions& o, int64_t step) {
  if (step < o.warmup_steps) return o.lr * double(step + 1) / double(o.warmup_steps);
  const double span = std::max<int64_t>(1, o.total_steps - o.warmup_steps);
  const double progress = std::min(1.0, double(step - o.warmup_steps) / span);
  const double min_lr = o.lr * o.min_lr_ratio;
  return min_lr + 0.5 * (o.lr - min_lr) * (1.0 + std::cos(3.141592653589793 * progress));
}

}  // namespace unipool
