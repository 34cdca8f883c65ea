#pragma once
// The IDX format of MNIST and Fashion-MNIST: a big-endian header (magic 0x00000803 for u8
// images with dims N, rows, cols; 0x00000801 for u8 labels with dim N) followed by the raw
// bytes. Files may be gzip-compressed.
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "datasets/dataset.h"

namespace tranq::data {

constexpr uint32_t kIdxImagesMagic = 0x00000803;
constexpr uint32_t kIdxLabelsMagic = 0x00000801;

// u8 [N, 1, rows, cols]. Throws IoError (cannot read) or FormatError (wrong magic, size not
// exactly header + N * rows * cols bytes), naming the path.
Tensor read_idx_images(const std::string& path);
// i32 [N]. Throws like read_idx_images.
Tensor read_idx_labels(const std::string& path);
// Both files of a split. FormatError naming the file when the image file holds no image ("...
// holds no samples"), when rows x cols differ from the expected size (when rows and cols are
// given: > 0), when the counts disagree, or when a label is >= num_classes.
ImageSet load_idx_pair(const std::string& images_path, const std::string& labels_path,
                       int64_t num_classes, int64_t rows = 0, int64_t cols = 0);

// Writes a single-channel set (u8 [N, 1, rows, cols], labels < 256) as an IDX pair, gzipped
// when gzip is true: for tests and for exporting small synthetic sets in the MNIST layout.
void write_idx_images(const std::string& path, const Tensor& images, bool gzip);
void write_idx_labels(const std::string& path, const Tensor& labels, bool gzip);

}  // namespace tranq::data
