// --device, --backend and --bf16: where the engine computes (unipool::ComputeOptions).
#include <stdexcept>

#include "commands.h"
#include "unipool/engine.h"

namespace unipool::cli {

void add_compute_flags(CLI::App* cmd, ComputeOptions* o) {
  cmd->add_option("--device", o->device, "Compute on cpu or cuda (default cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--backend", o->backend,
                  "Operators: auto (fused on cpu, LibTorch ops on cuda), fused, generic")
      ->check(CLI::IsMember({"auto", "fused", "generic", "cuda-kernels"}));
  cmd->add_flag("--bf16", o->bf16, "bf16 matrix products, fp32 weights and optimizer (cuda)");
}

void apply_compute_flags(Engine& engine, const ComputeOptions& o) {
  try {
    engine.set_compute(o);
  } catch (const std::invalid_argument& e) {
    throw CLI::ValidationError(e.what());  // exit code 2: the arguments cannot run here
  }
}

}  // namespace unipool::cli
