// A downloaded checkpoint's weights as float32 tensors, read on demand from the memory-mapped
// files (BF16, F16, F32, FP8 with its scales): the forward pass asks for one layer's matrices
// as it reaches that layer and drops them after, so resident memory stays near one layer's
// working set. Every tensor's shape is checked against what config.json implies. Private to
// core/hf.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hf/layout_reader.h"
#include "unipool/moe_checkpoint.h"

namespace unipool::hf {

class RunWeights {
 public:
  RunWeights(const MoeCheckpoint& checkpoint, const nlohmann::json& config);

  bool has(const std::string& name) const { return tensors_.count(name) > 0; }
  // The whole tensor, shape `shape` ((rows, cols) or (n)); MoeLayoutError naming the tensor
  // when it is missing or shaped otherwise. `reuse`: converted into this buffer when it has
  // the shape (else a new one is made and kept there): a pass converts gigabytes of weights,
  // and fresh buffers would cost a page fault per 4 KiB each time.
  at::Tensor get(const std::string& name, const std::vector<int64_t>& shape,
                 at::Tensor* reuse = nullptr) const;
  // Checks that the tensor is there, shaped so, in a float format (with FP8's scale), without
  // reading its data.
  void check(const std::string& name, const std::vector<int64_t>& shape) const;
  // Rows [first, first + count) of a (rows, cols) matrix: (count, cols).
  at::Tensor row_block(const std::string& name, int64_t rows, int64_t cols, int64_t first,
                       int64_t count) const;
  // Chosen rows (an embedding lookup): (ids.size(), cols).
  at::Tensor rows(const std::string& name, int64_t rows, int64_t cols,
                  const std::vector<int64_t>& ids) const;
  // Gives back the pages read from the tensor (the file stays mapped).
  void release(const std::string& name) const;
  // Gives back the pages of every tensor whose name starts with `prefix` (a layer's).
  void release_prefix(const std::string& prefix) const;
  // Threads that convert a large matrix (the pass's --threads).
  void set_threads(int threads) { threads_ = std::max(1, threads); }
  // Names of every tensor, for "unused tensor" checks.
  const std::map<std::string, StoredTensor>& tensors() const { return tensors_; }

 private:
  MatrixRef matrix(const std::string& name, int64_t rows, int64_t cols) const;
  // Converts rows `ids` of `m` into out (ids.size(), cols), split over LibTorch's threads.
  void convert(const MatrixRef& m, const std::vector<int64_t>& ids, float* out) const;
  const MoeCheckpoint& checkpoint_;
  const nlohmann::json& config_;
  std::map<std::string, StoredTensor> tensors_;
  int threads_ = 1;
};

}  // namespace unipool::hf
