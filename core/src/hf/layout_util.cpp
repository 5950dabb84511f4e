#include "hf/layout_util.h"

#include <algorithm>

#include "hf/dtype_convert.h"

namespace unipool::hf {

namespace {

bool ends_with(const std::string& s, const char* suffix) {
  const std::string t(suffix);
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

// Quantisation side tensors: not parameters of the model.
bool is_side_tensor(const std::string& name) {
  return ends_with(name, "_scale_inv") || ends_with(name, "_scale") || ends_with(name, "_scales");
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

std::string json_string(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

int64_t json_int(const nlohmann::json& j, std::initializer_list<const char*> keys) {
  if (!j.is_object()) return 0;
  for (const char* k : keys)
    if (j.contains(k) && j[k].is_number_integer()) return j[k].get<int64_t>();
  if (j.contains("text_config")) return json_int(j["text_config"], keys);  // multimodal
  return 0;
}

std::string family_name(const std::string& model_type, const std::string& layout) {
  static const std::map<std::string, std::string> known = {
      {"mixtral", "Mixtral"},         {"olmoe", "OLMoE"},
      {"qwen2_moe", "Qwen2-MoE"},     {"qwen3_moe", "Qwen3-MoE"},
      {"deepseek_v2", "DeepSeek-V2"}, {"deepseek_v3", "DeepSeek-V3"},
      {"gpt_oss", "GPT-OSS"},         {"llama4", "Llama 4"},
      {"llama4_text", "Llama 4"}};
  const auto it = known.find(model_type);
  if (it != known.end()) return it->second;
  if (!model_type.empty()) return model_type + " (" + layout + ")";
  return layout;
}

void attach_fp8_scale(MatrixRef& m, const StoredTensor& weight, const std::string& name,
                      const std::map<std::string, StoredTensor>& tensors,
                      const nlohmann::json& config) {
  const std::string dtype = dtype_name(weight.info->dtype);
  if (!is_float_dtype(weight.info->dtype))  // E8M0 (a scale format) is not a float here
    throw MoeLayoutError(name + " is " + dtype + ": not a weight format that is read");
  auto it = tensors.find(name + "_scale_inv");
  if (it == tensors.end()) it = tensors.find(name + "_scale");
  if (it == tensors.end())
    throw MoeLayoutError(name + " is " + dtype + " but has no " + name + "_scale_inv or " + name +
                         "_scale beside it: it cannot be dequantised");
  const TensorEntry& s = *it->second.info;
  if (!is_float_dtype(s.dtype) || dtype_size(s.dtype) == 1)
    throw MoeLayoutError(s.name + " is " + dtype_name(s.dtype) + ": a scale must be F32/BF16/F16");
  m.scale = s.name;
  m.scale_file = it->second.file;
  if (s.numel() == 1) return;  // one scale for the whole tensor
  if (s.shape.size() != 2)
    throw MoeLayoutError(s.name + " has shape " + shape_text(s.shape) +
                         ": expected one scale or a (row blocks, column blocks) grid");
  int64_t br = 0, bc = 0;
  const nlohmann::json* q = config.is_object() && config.contains("quantization_config")
                                ? &config["quantization_config"]
                                : nullptr;
  if (q && q->is_object() && q->contains("weight_block_size") &&
      (*q)["weight_block_size"].is_array() && (*q)["weight_block_size"].size() == 2 &&
      (*q)["weight_block_size"][0].is_number_integer() &&
      (*q)["weight_block_size"][1].is_number_integer()) {
    br = (*q)["weight_block_size"][0].get<int64_t>();
    bc = (*q)["weight_block_size"][1].get<int64_t>();
  } else if (s.shape[0] > 0 && s.shape[1] > 0) {
    br = ceil_div(m.rows, s.shape[0]);
    bc = ceil_div(m.cols, s.shape[1]);
  }
  // Blocks larger than the matrix (or absurd ones from a config) are refused before ceil_div.
  if (br < 1 || bc < 1 || br > m.rows || bc > m.cols || ceil_div(m.rows, br) != s.shape[0] ||
      ceil_div(m.cols, bc) != s.shape[1])
    throw MoeLayoutError(s.name + " has shape " + shape_text(s.shape) + ", which does not tile " +
                         name + " " + shape_text(weight.info->shape) + " in blocks of " +
                         std::to_string(br) + " x " + std::to_string(bc));
  m.block_rows = br;
  m.block_cols = bc;
}

void count_parameters(MoeArchitecture& a, const std::map<std::string, StoredTensor>& tensors) {
  a.total_params = 0;
  a.dtype_params.clear();
  bool fp8 = false;
  for (const auto& [name, t] : tensors) {
    if (is_side_tensor(name)) continue;
    a.total_params += t.info->numel();
    a.dtype_params[dtype_name(t.info->dtype)] += t.info->numel();
    fp8 = fp8 || (is_float_dtype(t.info->dtype) && dtype_size(t.info->dtype) == 1);
  }
  a.routed_params = 0;
  for (const ExpertBank& b : a.banks)
    for (const ExpertRef& e : b.experts) a.routed_params += e.params();
  const int64_t per_expert = a.banks.empty() ? 0 : a.banks[0].experts[0].params();
  a.top_k = std::clamp(a.top_k, 0, a.experts_per_bank);  // a config's value, not trusted
  a.active_params = a.top_k > 0 ? a.total_params - a.routed_params +
                                      int64_t(a.routers.size()) * a.top_k * per_expert
                                : 0;
  if (fp8) {
    const MatrixRef& m = a.banks[0].experts[0].parts[0];
    a.notes.push_back(m.block_rows > 0 ? "FP8 weights, dequantised when read with their " +
                                             std::to_string(m.block_rows) + " x " +
                                             std::to_string(m.block_cols) + " block scales"
                                       : "FP8 weights, dequantised when read with their scales");
  }
}

}  // namespace unipool::hf
