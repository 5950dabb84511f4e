#include "training/engine_checkpoint.h"

#include "io/checkpoint.h"
#include "lock/lock_checkpoint.h"

namespace unipool {

void save_engine_state(const EngineState& m, const std::string& path) {
  CheckpointRecord r;
  r.config = m.config;
  r.options = m.options;
  r.data = m.data;
  r.step = m.step;
  r.random_layers = m.random_layers;
  r.recent_load = m.recent_load;
  // Moments are created lazily; creating zeros for a parameter never updated is harmless.
  auto& optimizer = const_cast<EngineState&>(m).optimizer;
  for (size_t i = 0; i < m.params.size(); ++i) {
    const std::string& name = m.params.name(i);
    const at::Tensor& p = m.params.tensor(i);
    r.params.add(name, p);  // shares the tensor: nothing is copied until it is written
    r.exp_avg[name] = optimizer.exp_avg(name, p);
    r.exp_avg_sq[name] = optimizer.exp_avg_sq(name, p);
  }
  save_lock_metadata(m, r.model_meta, r.state_meta);
  save_checkpoint(r, path);
}

std::unique_ptr<EngineState> open_engine_state(const std::string& path, bool resume,
                                               const std::optional<DataSpec>& data) {
  CheckpointRecord r = load_checkpoint(path, resume);
  auto m = std::make_unique<EngineState>();
  m->config = r.config;
  m->step = r.step;
  m->params = std::move(r.params);
  m->random_layers = r.random_layers;
  m->reset_recent_load();
  if (!resume) {
    load_lock_metadata(*m, r.model_meta, nullptr, path, "");
    m->options.seq = std::min(m->options.seq, m->config.max_seq_len);
    if (data) {
      m->data = *data;
      m->load_data();
    }
    return m;
  }
  m->options = r.options;
  m->data = r.data;
  m->recent_load = r.recent_load;
  for (const auto& [name, t] : r.exp_avg) m->optimizer.set_exp_avg(name, t);
  for (const auto& [name, t] : r.exp_avg_sq) m->optimizer.set_exp_avg_sq(name, t);
  load_lock_metadata(*m, r.model_meta, &r.state_meta, path, train_state_path(path));
  if (data) m->data = *data;
  try {
    m->load_data();
  } catch (const std::exception& e) {
    throw CheckpointError(std::string("cannot resume: the training data failed to load: ") +
                          e.what());
  }
  return m;
}

}  // namespace unipool
