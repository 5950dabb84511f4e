// Mixture-of-Experts checkpoints as people download them (Hugging Face safetensors: Mixtral,
// OLMoE, Qwen-MoE, DeepSeek-V2/V3, GPT-OSS) and our own, opened lazily: the headers are parsed,
// the layout is recognised from the tensor names and config.json, and weights are read only
// when a view asks for some of their rows. Plain C++ (no torch, no Qt).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "unipool/cancelled.h"
#include "unipool/mapped_safetensors.h"

namespace unipool {

// The checkpoint's tensors do not form a layout we know (the message says what was found).
class MoeLayoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// (fraction done in [0, 1], what is being done) -> false to cancel (Cancelled is thrown).
using ProgressFn = std::function<bool(double, const std::string&)>;

// A rows x cols matrix stored in `tensor` from row `first_row` on (a fused tensor holds every
// expert of a layer one after another), and FP8's scale tensor when there is one.
struct MatrixRef {
  int file = -1;  // index into MoeCheckpoint::files()
  std::string tensor;
  int64_t first_row = 0, rows = 0, cols = 0;
  int scale_file = -1;  // FP8: the scale tensor's file and name ("" when none)
  std::string scale;
  int64_t block_rows = 0, block_cols = 0;  // one scale per block; 0 = one per tensor
  int64_t numel() const { return rows * cols; }
};

// One expert's matrices: gate, up, down (or gate_up, down for fused layouts).
struct ExpertRef {
  std::vector<MatrixRef> parts;
  int64_t params() const;
};

// The experts one router chooses among: a MoE layer's own experts, or (our UniPool
// checkpoints) a pool that several layers share.
struct ExpertBank {
  std::string label;        // "layer 3", "pool (layers 0-5)"
  std::vector<int> layers;  // the model layers routing into it
  std::vector<ExpertRef> experts;
};

struct RouterRef {
  int layer = 0;
  int bank = 0;      // index into MoeArchitecture::banks
  MatrixRef weight;  // (experts, hidden)
};

struct MoeArchitecture {
  std::string family;      // "Mixtral", "OLMoE", "Qwen2-MoE", "DeepSeek-V3", "UniPool", ...
  std::string model_type;  // config.json's model_type ("" when absent)
  int n_layers = 0, moe_layers = 0;
  std::vector<int> dense_layers;  // layers with a plain MLP (DeepSeek's first layers, ...)
  int experts_per_bank = 0, shared_per_layer = 0, top_k = 0;  // top_k 0: not in the config
  int64_t hidden = 0, expert_hidden = 0, shared_hidden = 0, vocab = 0;
  int64_t total_params = 0;   // every weight (scale tensors left out)
  int64_t routed_params = 0;  // the routed experts, every bank
  int64_t shared_params = 0;  // shared experts
  int64_t active_params = 0;  // per token: all but the routed experts, plus top_k of them
  std::map<std::string, int64_t> dtype_params;  // "BF16" -> parameters stored so
  bool pool_shared = false;                     // our UniPool models: banks serve many layers
  std::vector<std::string> notes;               // FP8 dequantisation, partial downloads, ...
  std::vector<ExpertBank> banks;
  std::vector<RouterRef> routers;  // one per MoE layer
};

class MoeCheckpoint {
 public:
  // `path`: a .safetensors file; or a folder with model.safetensors.index.json (sharded) or
  // one .safetensors file, and config.json when the family ships one. Throws FormatError
  // (a file is malformed), MoeLayoutError (no layout recognised, or an inconsistent one) or
  // Cancelled.
  static std::unique_ptr<MoeCheckpoint> open(const std::string& path,
                                             const ProgressFn& progress = {});
  ~MoeCheckpoint();

  const MoeArchitecture& architecture() const { return arch_; }
  const std::string& path() const { return path_; }
  const std::vector<std::unique_ptr<MappedSafetensors>>& files() const { return files_; }
  uint64_t total_bytes() const;
  // Rows `rows` (ascending, each < ref.rows) of the matrix as float32, FP8 dequantised:
  // out holds rows.size() * ref.cols values.
  void read_rows(const MatrixRef& ref, const std::vector<int64_t>& rows, float* out) const;
  // Starts reading those rows in the background (read_rows then finds them in memory).
  void prefetch_rows(const MatrixRef& ref, const std::vector<int64_t>& rows) const;
  // Gives back the pages read from the matrix (and its scale).
  void release(const MatrixRef& ref) const;

 private:
  MoeCheckpoint() = default;
  std::string path_;
  std::vector<std::unique_ptr<MappedSafetensors>> files_;
  MoeArchitecture arch_;
};

// The UniPool view of a checkpoint's expert budget: the same routed experts as one shared
// pool, and the reduced pools the paper found to match layer-wise MoE (41.6-66.7%).
struct PoolView {
  int64_t pool_experts = 0;                             // every bank's experts as one pool
  int64_t expert_params = 0;                            // parameters of one routed expert
  int64_t reduced_low = 0;                              // experts in a 41.6% pool
  int64_t reduced_high = 0;                             // experts in a 66.7% pool
  int64_t params_saved_low = 0, params_saved_high = 0;  // parameters a reduced pool saves
};
PoolView pool_view(const MoeArchitecture& arch);

}  // namespace unipool
