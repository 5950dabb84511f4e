// A safetensors file in memory: the strict parser of whole files and the header-only parser
// (the one memory-mapped checkpoints use) must agree, and fail only with FormatError.
#include <cstdlib>

#include "fuzz_input.h"
#include "unipool/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bool whole_ok = false;
  size_t whole_tensors = 0;
  try {
    const unipool::SafetensorsFile f = unipool::parse_safetensors(data, size, "fuzz");
    whole_ok = true;
    whole_tensors = f.tensors.size();
    for (const unipool::TensorRecord& t : f.tensors)
      if (t.bytes.size() != size_t(t.numel()) * unipool::dtype_size(t.dtype)) std::abort();
  } catch (const unipool::FormatError&) {
  }
  try {
    const unipool::SafetensorsHeader h = unipool::parse_safetensors_header(data, size, size, "fuzz");
    // Both parsers apply the same checks to the same bytes.
    if (!whole_ok || h.tensors.size() != whole_tensors) std::abort();
    for (const unipool::TensorEntry& t : h.tensors)
      if (t.end < t.begin || h.data_start + t.end > size) std::abort();
  } catch (const unipool::FormatError&) {
    if (whole_ok) std::abort();
  }
  return 0;
}
