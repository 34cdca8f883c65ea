#include "datasets/cifar.h"

#include <cstring>

#include "core/error.h"
#include "datasets/file_io.h"

namespace tranq::data {

ImageSet read_cifar_files(const std::vector<std::string>& paths, CifarKind kind) {
  const bool fine = kind == CifarKind::cifar100;
  const int64_t record = cifar_record_bytes(kind);
  const int64_t label_bytes = record - kCifarPixels;
  const int64_t classes = fine ? 100 : 10;
  const char* format = fine ? "CIFAR-100" : "CIFAR-10";

  std::vector<std::vector<uint8_t>> contents;
  int64_t total = 0;
  for (const std::string& path : paths) {
    contents.push_back(read_file_bytes(path));
    const int64_t size = static_cast<int64_t>(contents.back().size());
    if (size == 0) {
      TRANQ_THROW(FormatError,
                  "'{}' holds no samples: 0 bytes, expected a positive multiple of the {}-byte "
                  "{} record",
                  path, record, format);
    }
    if (size % record != 0) {
      TRANQ_THROW(FormatError,
                  "'{}' is not a {} binary batch: {} bytes, expected a positive multiple of the "
                  "{}-byte record ({} label byte(s) + 3072 pixels); is the file truncated?",
                  path, format, size, record, label_bytes);
    }
    total += size / record;
  }

  ImageSet set;
  set.images = Tensor::empty({total, 3, 32, 32}, DType::u8);
  set.labels = Tensor::empty({total}, DType::i32);
  set.num_classes = classes;
  uint8_t* img = set.images.data<uint8_t>();
  int32_t* lab = set.labels.data<int32_t>();
  int64_t at = 0;
  for (size_t f = 0; f < paths.size(); ++f) {
    const std::vector<uint8_t>& bytes = contents[f];
    const int64_t n = static_cast<int64_t>(bytes.size()) / record;
    for (int64_t r = 0; r < n; ++r, ++at) {
      const uint8_t* rec = bytes.data() + r * record;
      if (fine && rec[0] >= 20) {
        TRANQ_THROW(FormatError,
                    "'{}': coarse label {} of record {} is out of range, expected 0..19", paths[f],
                    rec[0], r);
      }
      const int32_t label = rec[label_bytes - 1];
      if (label >= classes) {
        TRANQ_THROW(FormatError, "'{}': label {} of record {} is out of range, expected 0..{}",
                    paths[f], label, r, classes - 1);
      }
      lab[at] = label;
      std::memcpy(img + at * kCifarPixels, rec + label_bytes, kCifarPixels);
    }
  }
  return set;
}

}  // namespace tranq::data
