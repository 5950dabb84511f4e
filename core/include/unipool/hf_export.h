// Our models in the layouts of the tools people already use (issue 20): a folder with
// config.json, model.safetensors and a byte-level tokenizer.json that transformers, vLLM or
// llama.cpp's converters read as Mixtral or Qwen2-MoE. Plain C++ (no torch).
//
// What is exact: every weight is copied bit for bit. A pool shared by several layers becomes
// per-layer copies of its experts. Routing is exact for a softmax router in the Qwen2-MoE
// layout (norm_topk_prob = renormalize_gates), and in the Mixtral layout only when the gates
// are renormalised (Mixtral always renormalises) or top-k takes every expert. NormRouter
// (UniPool) has no counterpart in either family: the exported router is a softmax over the
// same logits, so it picks the same experts wherever a token has a positive logit but weighs
// them differently; such an export needs `approximate` and says so in its config.json.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace unipool {

enum class HfExportFormat { Mixtral, Qwen2Moe };

struct HfExportReport {
  bool exact = true;
  std::vector<std::string> notes;  // what differs, copies made
  std::vector<std::string> files;  // written, in the folder
};

// What export would do, without writing (the reasons an approximate export needs the flag).
HfExportReport plan_hf_export(const std::string& checkpoint, HfExportFormat format);

// Writes `out_dir` (created if needed; files there are replaced). Throws std::runtime_error
// when the checkpoint cannot be read or written, and when the export is not exact and
// `approximate` is false (the message gives the reasons).
HfExportReport export_hf(const std::string& checkpoint, const std::string& out_dir,
                         HfExportFormat format, bool approximate);

}  // namespace unipool
