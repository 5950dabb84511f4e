// Training text from the user's disk: one file, or a folder of .txt files joined in name
// order, and the split of any labelled text into training and validation parts.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <system_error>

#include "unipool/corpus.h"

namespace unipool {
namespace {

namespace fs = std::filesystem;

std::string read_whole_file(const fs::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    throw DataError(path.string() +
                    ": cannot read file: " + std::generic_category().message(errno));
  }
  std::string text;
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) {
    throw DataError(path.string() + ": read error: " + std::generic_category().message(err));
  }
  return text;
}

}  // namespace

LabelledText load_text_path(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found) throw DataError(path + ": path does not exist");
  if (ec) throw DataError(path + ": cannot access path: " + ec.message());

  std::string text;
  if (fs::is_directory(st)) {
    std::vector<fs::path> files;
    fs::directory_iterator it(path, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::error_code type_ec;
      if (it->path().extension() == ".txt" && it->is_regular_file(type_ec)) {
        files.push_back(it->path());
      }
    }
    if (ec) throw DataError(path + ": cannot list folder: " + ec.message());
    if (files.empty()) throw DataError(path + ": folder contains no .txt files");
    std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
      return a.filename().string() < b.filename().string();
    });
    size_t content = 0;
    for (size_t i = 0; i < files.size(); ++i) {
      if (i > 0) text += '\n';
      const std::string part = read_whole_file(files[i]);
      content += part.size();
      text += part;
    }
    // Separators alone are not training text.
    if (content == 0) throw DataError(path + ": all .txt files in the folder are empty");
  } else if (fs::is_regular_file(st)) {
    text = read_whole_file(path);
    if (text.empty()) throw DataError(path + ": file is empty (0 bytes)");
  } else {
    throw DataError(path + ": not a regular file or folder");
  }

  LabelledText out;
  out.domain.assign(text.size(), kUnknownDomain);
  out.text = std::move(text);
  return out;
}

TrainValidSplit split_train_valid(const LabelledText& all, double valid_fraction,
                                  size_t min_bytes) {
  std::ostringstream frac;
  frac << valid_fraction;
  if (!(valid_fraction > 0.0 && valid_fraction < 1.0)) {
    throw DataError("split_train_valid: valid_fraction must be between 0 and 1 (exclusive), got " +
                    frac.str());
  }
  if (all.domain.size() != all.text.size()) {
    throw DataError("split_train_valid: text has " + std::to_string(all.text.size()) +
                    " bytes but " + std::to_string(all.domain.size()) + " domain labels");
  }
  const size_t n = all.text.size();
  const size_t n_valid = std::min(n, static_cast<size_t>(std::llround(n * valid_fraction)));
  const size_t n_train = n - n_valid;
  if (n_train < min_bytes || n_valid < min_bytes) {
    // Smallest total whose both parts reach min_bytes (up to rounding).
    const double need =
        std::ceil(static_cast<double>(min_bytes) / std::min(valid_fraction, 1.0 - valid_fraction));
    throw DataError("text is too short to split: " + std::to_string(n) + " bytes give " +
                    std::to_string(n_train) + " training and " + std::to_string(n_valid) +
                    " validation bytes, but each part needs at least " + std::to_string(min_bytes) +
                    " bytes (about " + std::to_string(static_cast<uint64_t>(need)) +
                    " bytes in total at valid_fraction " + frac.str() + ")");
  }
  TrainValidSplit s;
  s.train.text = all.text.substr(0, n_train);
  s.valid.text = all.text.substr(n_train);
  s.train.domain.assign(all.domain.begin(), all.domain.begin() + n_train);
  s.valid.domain.assign(all.domain.begin() + n_train, all.domain.end());
  s.train.domain_names = all.domain_names;
  s.valid.domain_names = all.domain_names;
  return s;
}

}  // namespace unipool
