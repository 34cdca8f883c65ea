#pragma once
// The CIFAR "binary version" files: fixed-size records of label byte(s) followed by 3072 pixel
// bytes (3 x 32 x 32, channel-major: all red, then green, then blue, rows top to bottom).
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace tranq::data {

enum class CifarKind {
  cifar10,   // record: label (0..9), 3072 pixels
  cifar100,  // record: coarse label (0..19), fine label (0..99), 3072 pixels; fine is used
};

constexpr int64_t kCifarPixels = 3 * 32 * 32;
inline int64_t cifar_record_bytes(CifarKind kind) {
  return (kind == CifarKind::cifar10 ? 1 : 2) + kCifarPixels;
}

// Concatenates the records of the files in the given order. Throws IoError when a file cannot
// be read, FormatError when a file is empty ("... holds no samples"), when its size is not a
// multiple of the record size or a label is out of range (naming the file and the record).
ImageSet read_cifar_files(const std::vector<std::string>& paths, CifarKind kind);

}  // namespace tranq::data
