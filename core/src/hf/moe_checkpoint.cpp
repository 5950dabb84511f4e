// Opening a MoE checkpoint: one file or a sharded folder (model.safetensors.index.json), each
// file memory-mapped with only its header parsed; then the layout (hf/layout_reader.h).
#include "unipool/moe_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "hf/checkpoint_json.h"
#include "hf/dtype_convert.h"
#include "hf/layout_reader.h"
#include "hf/layout_util.h"

namespace unipool {

namespace fs = std::filesystem;

int64_t ExpertRef::params() const {
  int64_t n = 0;
  for (const MatrixRef& m : parts) n += m.numel();
  return n;
}

MoeCheckpoint::~MoeCheckpoint() = default;

std::unique_ptr<MoeCheckpoint> MoeCheckpoint::open(const std::string& path,
                                                   const ProgressFn& progress) {
  std::unique_ptr<MoeCheckpoint> c(new MoeCheckpoint);
  c->path_ = path;
  const fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) throw FormatError(path + ": no such file or folder");
  const fs::path folder = fs::is_directory(p, ec) ? p : p.parent_path();
  std::vector<std::string> files;
  std::map<std::string, std::string> weight_map;
  const fs::path index = folder / "model.safetensors.index.json";
  const bool is_folder = fs::is_directory(p, ec);
  if (is_folder || fs::exists(index, ec)) {
    if (fs::exists(index, ec)) {
      hf::CheckpointIndex parsed =
          hf::parse_checkpoint_index(hf::read_json_object(index.string()), index.string());
      files = std::move(parsed.shards);
      weight_map = std::move(parsed.weight_map);
    }
    // One shard opened on its own opens the checkpoint it belongs to: a shard alone holds
    // only some of the layers. A file the index does not list is opened alone.
    if (!is_folder && std::find(files.begin(), files.end(), p.filename().string()) == files.end()) {
      files = {p.filename().string()};
      weight_map.clear();
    }
  } else {
    files.push_back(p.filename().string());
  }
  if (is_folder && files.empty()) {
    for (const auto& entry : fs::directory_iterator(p, ec))
      if (entry.path().extension() == ".safetensors") files.push_back(entry.path().filename());
    std::sort(files.begin(), files.end());
    if (files.empty())
      throw FormatError(path +
                        ": the folder has no .safetensors file and no "
                        "model.safetensors.index.json");
  }
  for (const std::string& f : files)
    if (!fs::exists(folder / f, ec))
      throw FormatError(index.string() + ": lists shard " + f +
                        ", which is not in the folder (an unfinished download?)");
  std::map<std::string, hf::StoredTensor> tensors;
  for (size_t i = 0; i < files.size(); ++i) {
    if (progress &&
        !progress(double(i) / double(files.size()), "reading the header of " + files[i]))
      throw Cancelled("cancelled");
    c->files_.push_back(std::make_unique<MappedSafetensors>((folder / files[i]).string()));
    for (const TensorEntry& t : c->files_.back()->tensors()) {
      if (tensors.count(t.name))
        throw FormatError(c->files_.back()->path() + ": tensor " + t.name + " is also in " +
                          c->files_[size_t(tensors[t.name].file)]->path());
      tensors[t.name] = {int(i), &t};
    }
  }
  for (const auto& [tensor, file] : weight_map) {
    const auto it = tensors.find(tensor);
    if (it == tensors.end() || files[size_t(it->second.file)] != file)
      throw FormatError(index.string() + ": puts " + tensor + " in " + file +
                        ", which does not have it");
  }
  const auto& metadata = c->files_[0]->metadata();
  const auto format = metadata.find("format");
  if (format != metadata.end() && format->second == "unipool") {
    c->arch_ = hf::read_own_layout(tensors, metadata);  // our own files need no config.json
  } else {
    nlohmann::json config;  // null when there is none
    const fs::path config_path = folder / "config.json";
    if (fs::exists(config_path, ec)) config = hf::read_json_object(config_path.string());
    c->arch_ = hf::read_layout(tensors, config);
  }
  if (progress && !progress(1.0, "layout recognised")) throw Cancelled("cancelled");
  return c;
}

uint64_t MoeCheckpoint::total_bytes() const {
  uint64_t n = 0;
  for (const auto& f : files_) n += f->file_size();
  return n;
}

void MoeCheckpoint::read_rows(const MatrixRef& ref, const std::vector<int64_t>& rows,
                              float* out) const {
  const MappedSafetensors& f = *files_.at(size_t(ref.file));
  const TensorEntry* t = f.find(ref.tensor);
  if (!t) throw FormatError(f.path() + ": no tensor " + ref.tensor);
  const size_t size = dtype_size(t->dtype);
  const uint64_t row_bytes = uint64_t(ref.cols) * size;
  if (uint64_t(ref.first_row + ref.rows) * row_bytes > t->end - t->begin)
    throw FormatError(f.path() + ": " + ref.tensor + " is smaller than its layout says");
  const uint8_t* base = f.data(*t) + uint64_t(ref.first_row) * row_bytes;
  for (size_t i = 0; i < rows.size(); ++i)
    hf::to_float(t->dtype, base + uint64_t(rows[i]) * row_bytes, ref.cols, out + i * ref.cols);
  if (ref.scale.empty()) return;
  const MappedSafetensors& sf = *files_.at(size_t(ref.scale_file));
  const TensorEntry* s = sf.find(ref.scale);
  if (!s) throw FormatError(sf.path() + ": no tensor " + ref.scale);
  std::vector<float> scale(size_t(s->numel()));
  hf::to_float(s->dtype, sf.data(*s), s->numel(), scale.data());
  for (size_t i = 0; i < rows.size(); ++i) {
    float* row = out + i * ref.cols;
    if (ref.block_rows == 0) {
      for (int64_t j = 0; j < ref.cols; ++j) row[j] *= scale[0];
      continue;
    }
    const int64_t blocks_per_row = (ref.cols + ref.block_cols - 1) / ref.block_cols;
    const float* srow = scale.data() + (rows[i] / ref.block_rows) * blocks_per_row;
    for (int64_t j = 0; j < ref.cols; ++j) row[j] *= srow[j / ref.block_cols];
  }
}

void MoeCheckpoint::prefetch_rows(const MatrixRef& ref, const std::vector<int64_t>& rows) const {
  const MappedSafetensors& f = *files_.at(size_t(ref.file));
  const TensorEntry* t = f.find(ref.tensor);
  if (!t) return;
  const uint64_t row_bytes = uint64_t(ref.cols) * dtype_size(t->dtype);
  for (int64_t r : rows) f.prefetch(*t, uint64_t(ref.first_row + r) * row_bytes, row_bytes);
}

void MoeCheckpoint::release(const MatrixRef& ref) const {
  const MappedSafetensors& f = *files_.at(size_t(ref.file));
  if (const TensorEntry* t = f.find(ref.tensor)) {
    const uint64_t row_bytes = uint64_t(ref.cols) * dtype_size(t->dtype);
    f.release(*t, uint64_t(ref.first_row) * row_bytes, uint64_t(ref.rows) * row_bytes);
  }
  if (!ref.scale.empty())
    if (const TensorEntry* s = files_.at(size_t(ref.scale_file))->find(ref.scale))
      files_.at(size_t(ref.scale_file))->release(*s);
}

PoolView pool_view(const MoeArchitecture& a) {
  PoolView v;
  if (a.banks.empty()) return v;
  v.pool_experts = int64_t(a.banks.size()) * a.experts_per_bank;
  v.expert_params = a.banks[0].experts[0].params();
  v.reduced_low = std::llround(0.416 * double(v.pool_experts));
  v.reduced_high = std::llround(0.667 * double(v.pool_experts));
  v.params_saved_low = (v.pool_experts - v.reduced_low) * v.expert_params;
  v.params_saved_high = (v.pool_experts - v.reduced_high) * v.expert_params;
  return v;
}

}  // namespace unipool
