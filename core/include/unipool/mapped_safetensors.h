// A safetensors file opened by memory-mapping it: the header is parsed with the same strict
// checks as read_safetensors, the data is read only where it is touched, and the pages read
// can be given back, so a file of any size is opened with little resident memory.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "unipool/safetensors.h"

namespace unipool {

class MappedSafetensors {
 public:
  // FormatError (naming the path) if the file cannot be opened, mapped or parsed.
  explicit MappedSafetensors(const std::string& path);
  ~MappedSafetensors();
  MappedSafetensors(const MappedSafetensors&) = delete;
  MappedSafetensors& operator=(const MappedSafetensors&) = delete;

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return size_; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const std::vector<TensorEntry>& tensors() const { return header_.tensors; }
  const TensorEntry* find(const std::string& name) const;  // nullptr if absent
  // The tensor's bytes in the mapping ((end - begin) of them); pages load as they are read.
  const uint8_t* data(const TensorEntry& t) const { return base_ + header_.data_start + t.begin; }
  // Drops the resident pages of [offset, offset + bytes) of a tensor's data (they are read
  // again from the file if touched again).
  void release(const TensorEntry& t, uint64_t offset, uint64_t bytes) const;
  void release(const TensorEntry& t) const { release(t, 0, t.end - t.begin); }
  // Asks the kernel to start reading [offset, offset + bytes) of a tensor's data now, so that
  // scattered reads (sampled rows) wait on the disk in parallel rather than one by one.
  void prefetch(const TensorEntry& t, uint64_t offset, uint64_t bytes) const;

 private:
  // madvise() over the whole pages holding the range.
  void advise(const TensorEntry& t, uint64_t offset, uint64_t bytes, int advice) const;
  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  SafetensorsHeader header_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace unipool
