// What the safetensors reader and writer share: the format's limits, the dtype table and the
// error helpers. Private to core/io.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>

#include "unipool/safetensors.h"

namespace unipool::safetensors_format {

using json = nlohmann::json;

// Real headers are a few KB; the cap stops a hostile length from driving a huge parse.
inline constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;
// A valid header nests 3 deep (object -> entry -> shape); refusing deeper input early keeps the
// DOM parse cheap and its destruction shallow.
inline constexpr size_t kMaxJsonDepth = 8;
inline constexpr const char* kMetadataKey = "__metadata__";

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};

inline constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},
    {DType::BF16, "BF16", 2},
    {DType::F16, "F16", 2},
    {DType::I64, "I64", 8},
    {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 1},
    {DType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 1},
    {DType::F8_E8M0, "F8_E8M0", 1},
    {DType::U16, "U16", 2},
    {DType::U32, "U32", 4},
    {DType::U64, "U64", 8},
    {DType::C64, "C64", 8},
};

inline const DTypeInfo& info(DType dtype) {
  for (const DTypeInfo& d : kDTypes) {
    if (d.dtype == dtype) return d;
  }
  return kDTypes[0];  // unreachable for valid enum values
}

inline std::string errno_text(int err) { return std::generic_category().message(err); }

// Names come from untrusted input: escape them and cap the length so messages stay printable.
inline std::string quote(const std::string& s) {
  constexpr size_t kMaxShown = 80;
  std::string shown = s.size() > kMaxShown ? s.substr(0, kMaxShown) + "..." : s;
  return json(shown).dump(-1, ' ', false, json::error_handler_t::replace);
}

[[noreturn]] inline void fail(const std::string& what, const std::string& problem) {
  throw FormatError(what + ": " + problem);
}

// `path` opened read-only; it must be a regular file (not a folder or a device). Closed when
// this goes. Failures throw FormatError naming the path.
class RegularFile {
 public:
  explicit RegularFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) fail(path, "cannot open file: " + errno_text(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int err = errno;
      ::close(fd_);
      fail(path, "cannot stat file: " + errno_text(err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      fail(path, "not a regular file");
    }
    size_ = uint64_t(st.st_size);
  }
  ~RegularFile() { ::close(fd_); }
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace unipool::safetensors_format
