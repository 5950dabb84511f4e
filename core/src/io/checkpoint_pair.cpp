// The checkpoint pair's save and recovery protocol (io/checkpoint_pair.h).
#include "io/checkpoint_pair.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <optional>

#include "io/safetensors_files.h"
#include "unipool/mapped_safetensors.h"

namespace unipool {

namespace fs = std::filesystem;

namespace {

// The "save_id" of a safetensors file's metadata (its header only: the file is mapped, the data
// never touched); nullopt when the file is missing, torn or has none.
std::optional<std::string> save_id_of(const std::string& path) {
  try {
    const MappedSafetensors file(path);
    const auto it = file.metadata().find("save_id");
    if (it == file.metadata().end()) return std::nullopt;
    return it->second;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Temporary files of `base` in `dir` whose writer is no longer running.
void remove_dead_writers_files(const fs::path& dir, const std::string& base) {
  const std::string prefix = temp_prefix(base);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());  // "<pid>.<n>"
    const long pid = std::strtol(rest.c_str(), nullptr, 10);
    if (pid <= 0 || pid == long(::getpid())) continue;  // ours: a save of this process
    if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;  // its writer may be alive
    fs::remove(entry.path(), ec);
  }
}

}  // namespace

std::string pending_model_path(const std::string& model_path) {
  const fs::path p(model_path);
  return (p.parent_path() / ("." + p.filename().string() + ".pending")).string();
}

void recover_checkpoint_pair(const std::string& model_path, const std::string& state_path) {
  try {
    const std::string pending = pending_model_path(model_path);
    std::error_code ec;
    if (fs::exists(pending, ec)) {
      const auto pending_id = save_id_of(pending), state_id = save_id_of(state_path);
      if (pending_id && state_id && *pending_id == *state_id)
        rename_durably(pending, model_path);  // the save had committed: finish it
      else
        fs::remove(pending, ec);  // it had not: the old pair stands
    }
    const fs::path dir = fs::absolute(model_path).parent_path();
    remove_dead_writers_files(dir, fs::path(model_path).filename().string());
    remove_dead_writers_files(dir, fs::path(state_path).filename().string());
  } catch (const std::exception&) {
    // A folder we cannot change (read-only media): read what is there.
  }
}

void save_checkpoint_pair(const FileImage& model, const FileImage& state) {
  // The last rename must not fail after the commit: a folder in the way is refused first.
  for (const std::string& p : {model.path, state.path}) {
    std::error_code ec;
    if (fs::is_directory(p, ec))
      throw std::runtime_error("cannot write " + p + ": a folder of that name is in the way");
  }
  recover_checkpoint_pair(model.path, state.path);
  const std::string state_tmp = write_safetensors_temp(state.path, state.metadata, *state.tensors);
  std::string model_tmp;
  try {
    model_tmp = write_safetensors_temp(model.path, model.metadata, *model.tensors);
  } catch (...) {
    ::unlink(state_tmp.c_str());
    throw;
  }
  const std::string pending = pending_model_path(model.path);
  try {
    rename_durably(model_tmp, pending);
  } catch (...) {
    ::unlink(state_tmp.c_str());
    ::unlink(model_tmp.c_str());
    throw;
  }
  try {
    rename_durably(state_tmp, state.path);  // the commit point
  } catch (...) {
    ::unlink(state_tmp.c_str());
    ::unlink(pending.c_str());
    throw;
  }
  // Committed: should this rename fail, the next open or save finishes it.
  rename_durably(pending, model.path);
}

}  // namespace unipool
