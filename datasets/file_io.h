#pragma once
// Whole-file reads and writes for the dataset readers, with gzip handled transparently.
// Internal to datasets/; zlib stays out of every header.
#include <cstdint>
#include <string>
#include <vector>

namespace tranq::data {

bool file_exists(const std::string& path);
// Joins a directory and a file name with exactly one '/'.
std::string join_path(const std::string& dir, const std::string& name);
// The whole (decompressed) content of a plain or gzip file. Throws IoError when the file cannot
// be opened or read, FormatError when a gzip stream is corrupt or cut short.
std::vector<uint8_t> read_file_bytes(const std::string& path);
// Writes bytes to path, gzip-compressed when gzip is true. Throws IoError on failure.
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes, bool gzip);

}  // namespace tranq::data
