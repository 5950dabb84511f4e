// The named presets of the CLI and the app. Sizes follow the engine issue; the training
// defaults are documented in the README's preset table.
#include "unipool/architecture.h"
#include "unipool/config.h"

namespace unipool {

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"tiny",         "default",    "vanilla",
                                                 "unipool-full", "grouped",    "dense",
                                                 "unipool-lock", "lock-random"};
  return names;
}

namespace {

// The teaching model's shape, shared by every preset but `tiny`.
ModelConfig teaching_shape() {
  ModelConfig c;
  c.d_model = 128;
  c.n_layers = 6;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.expert_hidden = 256;
  c.max_seq_len = 1024;
  return c;
}

}  // namespace

Preset preset(const std::string& name) {
  Preset p;
  p.name = name;
  ModelConfig& c = p.model;
  c = teaching_shape();
  if (name == "tiny") {
    c.d_model = 32;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = 1;
    c.expert_hidden = 64;
    apply_architecture(c, Architecture::UniPool);  // 2 layers sharing a pool of 8
    c.max_seq_len = 256;
    p.train.batch = 8;
    p.train.seq = 64;
    p.train.lr = 5e-3;
    p.train.warmup_steps = 10;
    p.train.total_steps = 200;
    p.summary = "test-sized UniPool: 2 layers sharing a pool of 8 experts";
  } else if (name == "default") {
    apply_architecture(c, Architecture::UniPool);
    p.summary = "UniPool, one pool of 24 experts for 6 layers: half the expert budget of vanilla";
  } else if (name == "vanilla") {
    apply_architecture(c, Architecture::Vanilla);
    p.summary = "layer-wise MoE: 8 private experts per layer, softmax router, layer balance";
  } else if (name == "unipool-full") {
    apply_architecture(c, Architecture::UniPool);
    c.experts_per_group = kVanillaExpertsPerLayer * c.n_layers;
    p.summary = "UniPool with the full vanilla budget: one pool of 48 experts";
  } else if (name == "grouped") {
    apply_architecture(c, Architecture::Grouped);
    p.summary = "grouped pools: 3 pools of 8 experts, each shared by 2 consecutive layers";
  } else if (name == "dense") {
    apply_architecture(c, Architecture::Dense);
    p.summary = "dense baseline: one SwiGLU FFN per layer (a softmax router over 1 expert)";
  } else if (name == "unipool-lock" || name == "lock-random") {
    apply_architecture(c, Architecture::UniPoolLock);
    if (name == "lock-random") {
      c.lock.partition = "random";  // the paper's control: fixed and locked at step 0
      c.lock.freeze_step = c.lock.lock_step = 0;
      p.summary =
          "UniPool-lock's control: a random disjoint partition of 48 experts, 8 per layer, "
          "locked from step 0";
    } else {
      p.summary =
          "UniPool-lock: one pool of 48, frozen at step 150 and locked at 300 (8 experts per "
          "layer, a vanilla MoE's parameters and FLOPs)";
    }
  } else {
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError("unknown preset '" + name + "' (known: " + known + ")");
  }
  refresh_router_constant(c);
  validate(c);
  return p;
}

}  // namespace unipool
