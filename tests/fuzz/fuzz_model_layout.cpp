// A downloaded model's layout: config.json, NUL, then the tensors as {"name": [dtype, shape],
// ..., "__metadata__": {...}}. The tensors go through the real header parser (as a mapped
// file's header would), then the layout reader. It recognises a layout or throws
// MoeLayoutError/FormatError; a layout it accepts must point only at rows its tensors have
// (the forward pass reads them without further checks on the shapes).
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "fuzz_input.h"
#include "hf/layout_reader.h"
#include "hf/layout_util.h"
#include "unipool/moe_checkpoint.h"

namespace {

using nlohmann::json;

// The tensor list as a safetensors header image (8-byte length + JSON) with data offsets laid
// end to end; *file_size gets the size the file would have. Empty when the list is unusable.
std::vector<uint8_t> header_image(const json& list, uint64_t* file_size) {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, spec] : list.items()) {
    if (name == "__metadata__") {
      header[name] = spec;
      continue;
    }
    if (!spec.is_array() || spec.size() != 2 || !spec[0].is_string() || !spec[1].is_array())
      return {};
    const auto dtype = unipool::parse_dtype(spec[0].get<std::string>());
    if (!dtype) return {};
    uint64_t numel = 1;
    for (const json& d : spec[1]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 20)) return {};
      numel *= d.get<uint64_t>();
      if (numel > (uint64_t{1} << 40)) return {};
    }
    const uint64_t bytes = numel * unipool::dtype_size(*dtype);
    header[name] = {{"dtype", spec[0]}, {"shape", spec[1]}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  const std::string text = header.dump(-1, ' ', false, json::error_handler_t::replace);
  std::vector<uint8_t> image(8 + text.size());
  for (int i = 0; i < 8; ++i) image[size_t(i)] = uint8_t(uint64_t(text.size()) >> (8 * i));
  std::copy(text.begin(), text.end(), image.begin() + 8);
  *file_size = image.size() + offset;
  return image;
}

void check_matrix(const unipool::MatrixRef& m,
                  const std::map<std::string, unipool::hf::StoredTensor>& tensors) {
  const auto it = tensors.find(m.tensor);
  if (it == tensors.end() || m.rows <= 0 || m.cols <= 0 || m.first_row < 0) std::abort();
  if ((m.first_row + m.rows) * m.cols > it->second.info->numel()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = unipool::fuzz::split_input(data, size, 2);
  json config = json::parse(parts[0], nullptr, false);
  if (config.is_discarded() || !config.is_object()) config = json();  // as if absent
  const json list = json::parse(parts[1], nullptr, false);
  if (list.is_discarded() || !list.is_object()) return 0;
  uint64_t file_size = 0;
  const std::vector<uint8_t> image = header_image(list, &file_size);
  if (image.empty()) return 0;
  try {
    const unipool::SafetensorsHeader header =
        unipool::parse_safetensors_header(image.data(), image.size(), file_size, "fuzz");
    std::map<std::string, unipool::hf::StoredTensor> tensors;
    for (const unipool::TensorEntry& t : header.tensors) tensors[t.name] = {0, &t};
    const auto format = header.metadata.find("format");
    const unipool::MoeArchitecture arch =
        format != header.metadata.end() && format->second == "unipool"
            ? unipool::hf::read_own_layout(tensors, header.metadata)
            : unipool::hf::read_layout(tensors, config);
    for (const unipool::ExpertBank& bank : arch.banks)
      for (const unipool::ExpertRef& expert : bank.experts)
        for (const unipool::MatrixRef& m : expert.parts) check_matrix(m, tensors);
    for (const unipool::RouterRef& r : arch.routers) {
      check_matrix(r.weight, tensors);
      if (r.bank < 0 || size_t(r.bank) >= arch.banks.size()) std::abort();
    }
    (void)unipool::pool_view(arch);
  } catch (const unipool::FormatError&) {
  } catch (const unipool::MoeLayoutError&) {
  }
  return 0;
}
