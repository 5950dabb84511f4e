#include "hf/run_weights.h"

#include <algorithm>
#include <numeric>
#include <thread>

#include "hf/dtype_convert.h"
#include "hf/layout_util.h"

namespace unipool::hf {

RunWeights::RunWeights(const MoeCheckpoint& checkpoint, const nlohmann::json& config)
    : checkpoint_(checkpoint), config_(config) {
  const auto& files = checkpoint.files();
  for (size_t f = 0; f < files.size(); ++f)
    for (const TensorEntry& t : files[f]->tensors()) tensors_[t.name] = {int(f), &t};
}

MatrixRef RunWeights::matrix(const std::string& name, int64_t rows, int64_t cols) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw MoeLayoutError("the checkpoint has no tensor " + name + " (config.json implies it)");
  const TensorEntry& t = *it->second.info;
  const std::vector<int64_t> want = rows < 0 ? std::vector<int64_t>{cols}
                                             : std::vector<int64_t>{rows, cols};
  if (t.shape != want)
    throw MoeLayoutError(name + " has shape " + shape_text(t.shape) + ", config.json implies " +
                         shape_text(want));
  if (!is_float_dtype(t.dtype))
    throw MoeLayoutError(name + " is " + dtype_name(t.dtype) +
                         ": not a float format this engine reads (packed or MXFP4 weights "
                         "are not supported)");
  MatrixRef m;
  m.file = it->second.file;
  m.tensor = name;
  m.rows = rows < 0 ? 1 : rows;
  m.cols = cols;
  if (dtype_size(t.dtype) == 1) attach_fp8_scale(m, it->second, name, tensors_, config_);
  return m;
}

void RunWeights::check(const std::string& name, const std::vector<int64_t>& shape) const {
  matrix(name, shape.size() == 1 ? -1 : shape.at(0), shape.back());
}

at::Tensor RunWeights::get(const std::string& name, const std::vector<int64_t>& shape,
                           at::Tensor* reuse) const {
  if (shape.size() == 1) {
    const MatrixRef m = matrix(name, -1, shape[0]);
    at::Tensor out = at::empty({shape[0]}, at::kFloat);
    checkpoint_.read_rows(m, {0}, out.data_ptr<float>());
    return out;
  }
  if (!reuse) return row_block(name, shape.at(0), shape.at(1), 0, shape.at(0));
  const MatrixRef m = matrix(name, shape.at(0), shape.at(1));
  if (!reuse->defined() || reuse->sizes() != at::IntArrayRef(shape))
    *reuse = at::empty(shape, at::kFloat);
  std::vector<int64_t> ids(static_cast<size_t>(shape[0]), 0);
  std::iota(ids.begin(), ids.end(), 0);
  convert(m, ids, reuse->data_ptr<float>());
  return *reuse;
}

void RunWeights::convert(const MatrixRef& m, const std::vector<int64_t>& ids, float* out) const {
  const int64_t n = int64_t(ids.size());
  // Our own threads, not LibTorch's OpenMP pool: OpenMP threads spin after a parallel region
  // and would take the cores from OpenBLAS's GEMM that follows (set_compute_threads).
  const int64_t parts = n * m.cols < (1 << 20) ? 1 : std::min<int64_t>(threads_, n);
  auto run = [&](int64_t p) {
    const int64_t begin = n * p / parts, end = n * (p + 1) / parts;
    const std::vector<int64_t> part(ids.begin() + begin, ids.begin() + end);
    checkpoint_.read_rows(m, part, out + begin * m.cols);
  };
  std::vector<std::thread> helpers;
  for (int64_t p = 1; p < parts; ++p) helpers.emplace_back(run, p);
  run(0);
  for (std::thread& t : helpers) t.join();
}

at::Tensor RunWeights::row_block(const std::string& name, int64_t rows, int64_t cols,
                                 int64_t first, int64_t count) const {
  std::vector<int64_t> ids(static_cast<size_t>(count), 0);
  std::iota(ids.begin(), ids.end(), first);
  return this->rows(name, rows, cols, ids);
}

at::Tensor RunWeights::rows(const std::string& name, int64_t rows, int64_t cols,
                            const std::vector<int64_t>& ids) const {
  const MatrixRef m = matrix(name, rows, cols);
  at::Tensor out = at::empty({int64_t(ids.size()), cols}, at::kFloat);
  convert(m, ids, out.data_ptr<float>());
  return out;
}

void RunWeights::release(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) return;
  MatrixRef m;
  m.file = it->second.file;
  m.tensor = name;
  m.cols = it->second.info->shape.empty() ? 1 : it->second.info->shape.back();
  m.rows = m.cols > 0 ? it->second.info->numel() / m.cols : 0;
  checkpoint_.release(m);
}

void RunWeights::release_prefix(const std::string& prefix) const {
  for (auto it = tensors_.lower_bound(prefix);
       it != tensors_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    release(it->first);
}

}  // namespace unipool::hf
