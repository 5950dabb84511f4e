// The strict safetensors reader: every length, offset, dtype and shape of an untrusted file is
// checked before a byte is used (see unipool/safetensors.h).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include "io/safetensors_format.h"
#include "unipool/safetensors.h"

namespace unipool {
namespace {

using namespace safetensors_format;

// Pre-pass over the header: rejects duplicate keys (the DOM parser would silently keep the last
// one, letting two readers disagree about a file) and absurd nesting, and captures syntax errors.
class HeaderScreen : public nlohmann::json_sax<json> {
 public:
  std::string error;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return push(true); }
  bool end_object() override { return pop(); }
  bool start_array(std::size_t) override { return push(false); }
  bool end_array() override { return pop(); }

  bool key(string_t& k) override {
    if (frames_.empty() || !frames_.back().is_object) return true;
    if (!frames_.back().keys.insert(k).second) {
      error = "duplicate key " + quote(k) + " in header";
      return false;
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    error = std::string("header is not valid JSON (") + ex.what() + ")";
    return false;
  }

 private:
  struct Frame {
    bool is_object;
    std::set<std::string> keys;
  };

  bool push(bool is_object) {
    if (frames_.size() >= kMaxJsonDepth) {
      error = "header JSON is nested too deeply";
      return false;
    }
    frames_.push_back(Frame{is_object, {}});
    return true;
  }

  bool pop() {
    if (!frames_.empty()) frames_.pop_back();
    return true;
  }

  std::vector<Frame> frames_;
};

// Non-negative integer that fits int64 (what both shape entries and offsets need).
bool as_index(const json& v, uint64_t* out) {
  if (!v.is_number_unsigned()) return false;  // negative ints and floats have other types
  const uint64_t x = v.get<uint64_t>();
  if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  *out = x;
  return true;
}

TensorEntry parse_entry(const std::string& what, const std::string& name, const json& entry,
                        uint64_t data_size) {
  const std::string t = "tensor " + quote(name);
  if (name.empty()) fail(what, "empty tensor name");
  if (!entry.is_object()) fail(what, "entry for " + t + " is not an object");
  for (const auto& item : entry.items()) {
    const std::string& k = item.key();
    if (k != "dtype" && k != "shape" && k != "data_offsets") {
      fail(what, t + ": unexpected key " + quote(k));
    }
  }
  for (const char* k : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(k)) fail(what, t + ": missing key \"" + k + "\"");
  }

  TensorEntry p;
  p.name = name;
  const json& dt = entry["dtype"];
  if (!dt.is_string()) fail(what, t + ": \"dtype\" must be a string");
  const std::optional<DType> dtype = parse_dtype(dt.get<std::string>());
  if (!dtype) fail(what, t + ": unknown dtype " + quote(dt.get<std::string>()));
  p.dtype = *dtype;

  const json& shape = entry["shape"];
  if (!shape.is_array()) fail(what, t + ": \"shape\" must be an array of non-negative integers");
  int64_t numel = 1;
  for (const json& d : shape) {
    uint64_t dim = 0;
    if (!as_index(d, &dim)) {
      fail(what, t + ": \"shape\" must be an array of non-negative integers");
    }
    p.shape.push_back(static_cast<int64_t>(dim));
    if (__builtin_mul_overflow(numel, static_cast<int64_t>(dim), &numel)) {
      fail(what, t + ": shape element count overflows int64");
    }
  }
  int64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(dtype_size(*dtype)), &nbytes)) {
    fail(what, t + ": shape byte size overflows int64");
  }

  const json& offs = entry["data_offsets"];
  const std::string offs_msg = ": \"data_offsets\" must be an array of two non-negative integers";
  if (!offs.is_array() || offs.size() != 2) fail(what, t + offs_msg);
  if (!as_index(offs[0], &p.begin) || !as_index(offs[1], &p.end)) fail(what, t + offs_msg);
  if (p.begin > p.end) {
    fail(what,
         t + ": data_offsets begin " + std::to_string(p.begin) + " > end " + std::to_string(p.end));
  }
  if (p.end > data_size) {
    fail(what, t + ": data_offsets end " + std::to_string(p.end) + " is beyond the data buffer (" +
                   std::to_string(data_size) + " bytes)");
  }
  if (p.end - p.begin != static_cast<uint64_t>(nbytes)) {
    fail(what, t + ": byte length " + std::to_string(p.end - p.begin) +
                   " does not match shape and dtype (" + std::to_string(nbytes) + " bytes)");
  }
  return p;
}

void parse_metadata(const std::string& what, const json& meta,
                    std::map<std::string, std::string>* out) {
  if (!meta.is_object()) fail(what, "__metadata__ must be an object of strings");
  for (const auto& item : meta.items()) {
    if (!item.value().is_string()) {
      fail(what, "__metadata__ value for " + quote(item.key()) + " must be a string");
    }
    (*out)[item.key()] = item.value().get<std::string>();
  }
}

SafetensorsHeader parse_header_checked(const uint8_t* data, size_t size, uint64_t file_size,
                                       const std::string& what) {
  if (file_size < 8) {
    fail(what, "file is shorter than 8 bytes (" + std::to_string(file_size) + " bytes)");
  }
  if (size < 8) fail(what, "the first 8 bytes were not read");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  const uint64_t rest = file_size - 8;
  if (n == 0) fail(what, "header length is 0");
  if (n > kMaxHeaderBytes) {
    fail(what, "header length " + std::to_string(n) + " exceeds the 100 MiB limit");
  }
  if (n > rest) {
    fail(what, "header length " + std::to_string(n) + " extends past end of file (" +
                   std::to_string(rest) + " bytes follow)");
  }
  if (size < 8 + n) fail(what, "the header was not read whole");
  const char* hb = reinterpret_cast<const char*>(data + 8);
  const char* he = hb + n;
  const uint64_t data_size = rest - n;

  HeaderScreen screen;
  if (!json::sax_parse(hb, he, &screen)) {
    fail(what, screen.error.empty() ? "header is not valid JSON" : screen.error);
  }
  const json header = json::parse(hb, he);
  if (!header.is_object()) fail(what, "header must be a JSON object");

  SafetensorsHeader file;
  file.data_start = 8 + n;
  std::vector<TensorEntry>& pending = file.tensors;
  for (const auto& item : header.items()) {
    if (item.key() == kMetadataKey) {
      parse_metadata(what, item.value(), &file.metadata);
    } else {
      pending.push_back(parse_entry(what, item.key(), item.value(), data_size));
    }
  }

  // The format requires the tensors to tile the buffer exactly; anything else means the writer
  // was buggy or the file was tampered with, and hidden bytes are a classic smuggling vector.
  std::sort(pending.begin(), pending.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t cursor = 0;
  const std::string* prev = nullptr;
  for (const TensorEntry& p : pending) {
    const std::string t = "tensor " + quote(p.name);
    if (p.begin < cursor) fail(what, t + " overlaps tensor " + quote(*prev));
    if (p.begin > cursor) {
      fail(what,
           "hole of " + std::to_string(p.begin - cursor) + " bytes in the data buffer before " + t);
    }
    cursor = p.end;
    prev = &p.name;
  }
  if (cursor != data_size) {
    fail(what, "data buffer has " + std::to_string(data_size - cursor) +
                   " trailing bytes not covered by any tensor");
  }
  return file;
}

int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

const char* dtype_name(DType dtype) { return info(dtype).name; }

size_t dtype_size(DType dtype) { return info(dtype).size; }

std::optional<DType> parse_dtype(const std::string& name) {
  for (const DTypeInfo& d : kDTypes) {
    if (name == d.name) return d.dtype;
  }
  return std::nullopt;
}

int64_t TensorRecord::numel() const { return shape_numel(shape); }

const TensorRecord* SafetensorsFile::find(const std::string& name) const {
  for (const TensorRecord& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

int64_t TensorEntry::numel() const { return shape_numel(shape); }

SafetensorsHeader parse_safetensors_header(const uint8_t* head, size_t head_size,
                                           uint64_t file_size, const std::string& what) {
  if (head == nullptr && head_size != 0) fail(what, "null data pointer");
  try {
    return parse_header_checked(head, head_size, file_size, what);
  } catch (const json::exception& e) {
    fail(what, std::string("malformed header (") + e.what() + ")");
  }
}

SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& what) {
  SafetensorsHeader header = parse_safetensors_header(data, size, size, what);
  SafetensorsFile file;
  file.metadata = std::move(header.metadata);
  const uint8_t* buffer = data + header.data_start;
  file.tensors.reserve(header.tensors.size());
  for (TensorEntry& p : header.tensors) {
    TensorRecord r;
    r.name = std::move(p.name);
    r.dtype = p.dtype;
    r.shape = std::move(p.shape);
    r.bytes.assign(buffer + p.begin, buffer + p.end);
    file.tensors.push_back(std::move(r));
  }
  return file;
}

SafetensorsFile read_safetensors(const std::string& path) {
  const RegularFile file(path);
  // The whole file is read into memory: refuse sizes no UniPool model has rather than let a
  // huge (possibly sparse) file exhaust memory. The paper's smallest scale is ~3 GiB in F32.
  constexpr int64_t kMaxFileBytes = int64_t(16) << 30;
  if (file.size() > uint64_t(kMaxFileBytes)) {
    fail(path, "file of " + std::to_string(file.size()) + " bytes is larger than the 16 GiB limit");
  }
  std::vector<uint8_t> buf(static_cast<size_t>(file.size()));
  size_t got = 0;
  while (got < buf.size()) {
    const ssize_t r = ::read(file.fd(), buf.data() + got, buf.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(path, "read error: " + errno_text(errno));
    }
    if (r == 0) fail(path, "file shrank while being read");
    got += static_cast<size_t>(r);
  }
  return parse_safetensors(buf.data(), buf.size(), path);
}

}  // namespace unipool
