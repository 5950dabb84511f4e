// Writing safetensors files: a deterministic image (header in the caller's order, 8-byte
// aligned data) written to a temporary file in the target folder and renamed over the target.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <set>
#include <stdexcept>

#include "io/safetensors_files.h"
#include "io/safetensors_format.h"
#include "unipool/safetensors.h"

namespace unipool {
namespace {

using namespace safetensors_format;

// Retries short writes and EINTR; returns 0 or an errno value.
int write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

}  // namespace

std::vector<uint8_t> serialize_safetensors(const std::map<std::string, std::string>& metadata,
                                           const std::vector<TensorRecord>& tensors) {
  const std::string who = "serialize_safetensors";
  // ordered_json keeps __metadata__ first and tensors in the caller's order, which makes the
  // header easy to read and the output a pure function of the arguments.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[kMetadataKey] = std::move(meta);
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const TensorRecord& t : tensors) {
    const std::string tn = "tensor " + quote(t.name);
    if (t.name.empty()) fail(who, "empty tensor name");
    if (t.name == kMetadataKey) fail(who, "tensor name \"__metadata__\" is reserved");
    if (!seen.insert(t.name).second) fail(who, "duplicate tensor name " + quote(t.name));
    int64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d < 0) fail(who, tn + ": negative dimension");
      if (__builtin_mul_overflow(numel, d, &numel)) fail(who, tn + ": shape overflows int64");
    }
    int64_t expected = 0;
    if (__builtin_mul_overflow(numel, static_cast<int64_t>(dtype_size(t.dtype)), &expected)) {
      fail(who, tn + ": byte size overflows int64");
    }
    if (t.bytes.size() != static_cast<uint64_t>(expected)) {
      fail(who, tn + " has " + std::to_string(t.bytes.size()) + " bytes but shape and dtype " +
                    dtype_name(t.dtype) + " need " + std::to_string(expected));
    }
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_name(t.dtype);
    entry["shape"] = t.shape;
    entry["data_offsets"] = {offset, offset + t.bytes.size()};
    header[t.name] = std::move(entry);
    offset += t.bytes.size();
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::exception&) {
    fail(who, "a tensor name or metadata string is not valid UTF-8");
  }
  // Padding keeps the data buffer 8-byte aligned relative to the file start.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::vector<uint8_t> out;
  out.reserve(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), text.begin(), text.end());
  for (const TensorRecord& t : tensors) out.insert(out.end(), t.bytes.begin(), t.bytes.end());
  return out;
}

namespace {

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash + 1);
}

}  // namespace

std::string write_safetensors_temp(const std::string& path,
                                   const std::map<std::string, std::string>& metadata,
                                   const std::vector<TensorRecord>& tensors) {
  const std::vector<uint8_t> image = serialize_safetensors(metadata, tensors);
  const std::string who = "cannot write " + path + ": ";

  const size_t slash = path.rfind('/');
  const std::string dir_prefix = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty()) throw std::runtime_error(who + "the path has no file name");

  // The temp file must live in the target directory so that rename() is atomic (same filesystem).
  static std::atomic<unsigned> counter{0};
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = dir_prefix + temp_prefix(base) + std::to_string(::getpid()) + "." +
          std::to_string(counter++);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) throw std::runtime_error(who + "cannot create temporary file: " + errno_text(errno));

  auto abandon = [&](const std::string& step, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error(who + step + ": " + errno_text(err));
  };
  if (const int err = write_all(fd, image.data(), image.size())) abandon("write failed", err);
  if (::fsync(fd) != 0) abandon("fsync failed", errno);
  const int rc = ::close(fd);
  fd = -1;
  if (rc != 0) abandon("close failed", errno);
  return tmp;
}

void rename_durably(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw std::runtime_error("cannot write " + to + ": rename failed (from " + from +
                             "): " + errno_text(errno));
  // Persist the directory entry too, so the rename survives a power cut (best effort: some
  // filesystems cannot fsync a directory).
  const int dfd = ::open(dir_of(to).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string temp_prefix(const std::string& base) { return "." + base + ".tmp."; }

void write_safetensors_atomic(const std::string& path,
                              const std::map<std::string, std::string>& metadata,
                              const std::vector<TensorRecord>& tensors) {
  const std::string tmp = write_safetensors_temp(path, metadata, tensors);
  try {
    rename_durably(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace unipool
