// classify_model_file (unipool/model_file.h): ours, downloaded and runnable, another MoE
// checkpoint, or not a model, from the header and config.json.
#include "unipool/model_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "unipool/mapped_safetensors.h"
#include "unipool/hf_model.h"

namespace unipool {

namespace fs = std::filesystem;

namespace {

// config.json's model_type in the folder (or beside the file); empty when there is none.
std::string model_type_near(const fs::path& path) {
  std::error_code ec;
  const fs::path dir = fs::is_directory(path, ec) ? path : path.parent_path();
  const fs::path config = dir / "config.json";
  if (!fs::is_regular_file(config, ec) || fs::file_size(config, ec) > (1u << 22)) return "";
  try {
    std::ifstream in(config);
    const nlohmann::json j = nlohmann::json::parse(in);
    return j.value("model_type", std::string());
  } catch (const std::exception&) {
    return "";
  }
}

bool runnable(const std::string& type) {
  const auto& known = runnable_model_types();
  return std::find(known.begin(), known.end(), type) != known.end();
}

}  // namespace

ModelFileCheck classify_model_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    return {runnable(model_type_near(path)) ? ModelFileKind::Downloaded
                                            : ModelFileKind::MoeCheckpoint,
            ""};
  if (!fs::exists(path, ec)) return {ModelFileKind::NotAModel, path + ": no such file"};
  try {
    const MappedSafetensors file(path);  // the header only; the data is never touched
    const auto format = file.metadata().find("format");
    if (format != file.metadata().end() && format->second == "unipool")
      return {ModelFileKind::UniPool, ""};
  } catch (const std::exception& e) {
    return {ModelFileKind::NotAModel, e.what()};
  }
  return {runnable(model_type_near(path)) ? ModelFileKind::Downloaded
                                          : ModelFileKind::MoeCheckpoint,
          ""};
}

}  // namespace unipool
