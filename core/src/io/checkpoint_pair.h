// A checkpoint is two files (SPEC section 6): the model and `<stem>.train.safetensors`. They
// must change together: whenever a process dies (kill -9, power cut, OOM killer), the next
// start finds the old pair or the new pair, never a new state beside an old model. Private to
// core/.
//
// Protocol (docs/reliability.md): both files are written under temporary names and fsynced;
// the new model is renamed to `.<model>.pending`; the state is renamed over the old state (the
// commit point); the pending model is renamed over the old model. Recovery on the next open
// or save: a pending model whose save id is the state's is the committed half of a save and is
// renamed into place; any other pending model and every temporary file of a dead writer are
// removed.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "unipool/safetensors.h"

namespace unipool {

struct FileImage {
  std::string path;
  std::map<std::string, std::string> metadata;
  const std::vector<TensorRecord>* tensors = nullptr;
};

// Writes the pair as above. Throws std::runtime_error naming the file and the cause (full
// disk, read-only folder, a folder that vanished); the previous pair is then untouched.
void save_checkpoint_pair(const FileImage& model, const FileImage& state);
// Finishes or undoes what a killed save left behind (see above). Never throws: in a folder it
// cannot change, the files are read as they are.
void recover_checkpoint_pair(const std::string& model_path, const std::string& state_path);
// `.<model file name>.pending`, beside the model.
std::string pending_model_path(const std::string& model_path);

}  // namespace unipool
