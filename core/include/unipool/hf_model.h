// Running the MoE models people download (SPEC section 10): Mixtral, OLMoE, Qwen2-MoE,
// Qwen3-MoE, DeepSeek-V2 (and V2-Lite), DeepSeek-V3. Inference only, on token ids, with
// every switch read from config.json. Weights stay memory-mapped in their stored dtype and
// are converted to float32 layer by layer as the pass reaches them, so a model larger than
// RAM still runs. Plain C++ (no torch, no Qt).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "unipool/engine.h"
#include "unipool/moe_checkpoint.h"

namespace unipool {

struct HfModelInfo {
  std::string family;      // "OLMoE", "DeepSeek-V3", ...
  std::string model_type;  // config.json's
  std::string path;
  int n_layers = 0;
  std::vector<int> moe_layers;  // the layers with routed experts, ascending
  int n_experts = 0, top_k = 0;
  int64_t vocab = 0, hidden = 0;
  std::vector<std::string> notes;  // what the reader noticed (FP8 dequantisation, ...)
};

// Per token and MoE layer: the chosen experts (ascending id) and their gates.
struct HfRoutes {
  int moe_layers = 0, top_k = 0;
  int64_t n_tokens = 0;
  std::vector<int32_t> ids;      // (n_tokens) the tokens routed
  std::vector<int32_t> experts;  // (n_tokens, moe_layers, top_k)
  std::vector<float> gates;      // (n_tokens, moe_layers, top_k)
};

// A folder, or a .safetensors file whose metadata does not name our own format: a model
// downloaded from elsewhere (reads the header only). False for a file that cannot be read.
bool looks_downloaded(const std::string& path);

// config.json model_type values HfModel runs: mixtral, olmoe, qwen2_moe, qwen3_moe,
// deepseek_v2, deepseek_v3.
const std::vector<std::string>& runnable_model_types();

class HfModel {
 public:
  // `path`: a folder with config.json and safetensors (one file or an index), or one of its
  // files. Throws FormatError (a malformed file), MoeLayoutError (a family, switch or tensor
  // we do not run, or a config that contradicts the tensors) or Cancelled.
  static std::unique_ptr<HfModel> open(const std::string& path, const ProgressFn& progress = {});
  ~HfModel();

  const HfModelInfo& info() const;
  // CPU threads for the pass: set_compute_threads (process-wide: BLAS's pool) and the
  // threads converting weights.
  void set_threads(int threads);
  // Only the threads that convert weights (the studio: BLAS's threads are the training run's
  // business, set_compute_threads being process-wide).
  void set_weight_threads(int threads);

  // SPEC section 7 on ids: windows at 0, S, 2S, ...; a window's inputs ids[i..i+S), targets
  // ids[i+1..i+S+1); a last window without S+1 ids is dropped. `random`: per MoE layer (in
  // moe_layers order), route it at random (SPEC section 3, draws from `draw`). Routing counts
  // are (moe_layers, n_experts), one "group" per layer. std::invalid_argument for an id
  // outside the vocabulary or too few ids; Cancelled when `progress` says so.
  EvalResult evaluate(const std::vector<int32_t>& ids, int seq,
                      const std::optional<std::vector<bool>>& random = std::nullopt,
                      int64_t max_windows = -1, uint64_t draw = 0,
                      const ProgressFn& progress = {}) const;
  // Matrix-multiply FLOPs of one forward pass over `windows` windows of `seq` tokens:
  // projections, routers, the top_k experts (and shared experts, dense MLPs), lm_head, and
  // attention scores and values over the full S x S square. `attention`: the part that is
  // attention and expert products (what the benchmark's GEMM share counts).
  double forward_flops(int64_t seq, int64_t windows, double* attention_and_experts = nullptr) const;
  // Routes of every position of the windows of `ids` (as evaluate lays them out, the last
  // partial window included as a shorter window).
  HfRoutes routes(const std::vector<int32_t>& ids, int seq, const ProgressFn& progress = {}) const;

 private:
  HfModel();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace unipool
