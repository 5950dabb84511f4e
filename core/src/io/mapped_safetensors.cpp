#include "unipool/mapped_safetensors.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>

#include "io/safetensors_format.h"

namespace unipool {

using safetensors_format::errno_text;
using safetensors_format::fail;

MappedSafetensors::MappedSafetensors(const std::string& path) : path_(path) {
  const safetensors_format::RegularFile file(path);
  size_ = file.size();
  if (size_ < 8) fail(path, "file is shorter than 8 bytes (" + std::to_string(size_) + " bytes)");
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, file.fd(), 0);
  if (p == MAP_FAILED) fail(path, "cannot map file: " + errno_text(errno));
  base_ = static_cast<const uint8_t*>(p);
  try {
    // Only the header is parsed; its length is checked against the file before it is read.
    header_ = parse_safetensors_header(base_, size_t(size_), size_, path);
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(base_), size_);
    throw;
  }
  // The header's pages are not needed again.
  ::madvise(const_cast<uint8_t*>(base_), size_t(header_.data_start), MADV_DONTNEED);
  for (size_t i = 0; i < header_.tensors.size(); ++i) index_[header_.tensors[i].name] = i;
}

MappedSafetensors::~MappedSafetensors() {
  if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
}

const TensorEntry* MappedSafetensors::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

void MappedSafetensors::advise(const TensorEntry& t, uint64_t offset, uint64_t bytes,
                               int advice) const {
  const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
  const uint64_t from = header_.data_start + t.begin + offset;
  const uint64_t first = from / page * page,
                 last = std::min(size_, (from + bytes + page - 1) / page * page);
  if (last > first) ::madvise(const_cast<uint8_t*>(base_) + first, size_t(last - first), advice);
}

void MappedSafetensors::release(const TensorEntry& t, uint64_t offset, uint64_t bytes) const {
  // The mapping is read-only, so dropping a page never loses data: a neighbour that still
  // needs one of the edge pages reads it from the file again.
  advise(t, offset, bytes, MADV_DONTNEED);
}

void MappedSafetensors::prefetch(const TensorEntry& t, uint64_t offset, uint64_t bytes) const {
  advise(t, offset, bytes, MADV_WILLNEED);
}

}  // namespace unipool
