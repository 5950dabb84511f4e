// Strict reader and atomic writer for the safetensors checkpoint format.
//
// Layout: an 8-byte little-endian uint64 N, then N bytes of UTF-8 JSON (an object mapping tensor
// name -> {"dtype", "shape", "data_offsets"} plus an optional "__metadata__" object of strings),
// then the data buffer. Offsets are relative to the start of the data buffer.
//
// The reader treats every file as untrusted: it never reads out of bounds, never allocates from an
// unchecked length, and reports every problem as a FormatError whose message starts with the
// caller's `what` (usually the path) and names the problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace unipool {

// The safetensors dtypes of whole bytes. Our own files use F32 and I64; the rest come in
// checkpoints people download (BF16, F16, FP8 with its scale tensors). The sub-byte ones (F4,
// F6_*) are refused as unknown.
enum class DType {
  F32,
  F64,
  BF16,
  F16,
  I64,
  I32,
  I16,
  I8,
  U8,
  BOOL,
  F8_E4M3,
  F8_E5M2,
  F8_E4M3FNUZ,
  F8_E5M2FNUZ,
  F8_E8M0,
  U16,
  U32,
  U64,
  C64
};

// Canonical safetensors spelling: "F32", "BF16", "BOOL", ...
const char* dtype_name(DType dtype);
// Bytes per element (BOOL is stored as one byte).
size_t dtype_size(DType dtype);
// Exact, case-sensitive match of the canonical spelling.
std::optional<DType> parse_dtype(const std::string& name);

struct TensorRecord {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // empty = 0-dim scalar (one element)
  std::vector<uint8_t> bytes;  // raw little-endian element data, numel() * dtype_size(dtype)

  // Product of shape (1 for a scalar). Assumes a validated shape; does not check overflow.
  int64_t numel() const;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<TensorRecord> tensors;  // in data-offset order

  // nullptr if absent.
  const TensorRecord* find(const std::string& name) const;
};

class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Strict parse of an in-memory file. `what` (e.g. the path) starts every error message.
// Besides structural checks it requires that the tensors tile the data buffer exactly (no holes,
// no overlaps, no trailing bytes), rejects duplicate keys at any JSON level, and rejects keys other
// than dtype/shape/data_offsets inside a tensor entry.
SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& what);

// Reads the whole file, then parses it. FormatError on any problem, including an unreadable file.
SafetensorsFile read_safetensors(const std::string& path);

// A tensor's entry in a header, with its place in the data buffer (no bytes).
struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets in the data buffer
  int64_t numel() const;
};

struct SafetensorsHeader {
  std::map<std::string, std::string> metadata;
  std::vector<TensorEntry> tensors;  // in data-offset order
  uint64_t data_start = 0;           // file offset of the data buffer (8 + header length)
};

// The same strict checks as parse_safetensors on a header and the file's size, without
// touching the data: `head` holds at least the first min(size, 8 + header length) bytes.
SafetensorsHeader parse_safetensors_header(const uint8_t* head, size_t head_size,
                                           uint64_t file_size, const std::string& what);

// Builds a file image: header ("__metadata__" first if non-empty, then tensors in the order
// given), padded with spaces to a multiple of 8 bytes, then the tensors laid out contiguously in
// that order. Throws FormatError for inputs the format cannot represent: empty, duplicate or
// reserved ("__metadata__") names, byte counts that differ from numel * dtype_size, negative
// dimensions, or names/metadata that are not valid UTF-8.
std::vector<uint8_t> serialize_safetensors(const std::map<std::string, std::string>& metadata,
                                           const std::vector<TensorRecord>& tensors);

// Writes to a temporary file in the same directory, fsyncs it, then renames it over `path`.
// On failure removes the temporary file and throws std::runtime_error naming the failing step and
// the errno text; whatever was at `path` before is untouched.
void write_safetensors_atomic(const std::string& path,
                              const std::map<std::string, std::string>& metadata,
                              const std::vector<TensorRecord>& tensors);

}  // namespace unipool
