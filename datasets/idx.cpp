#include "datasets/idx.h"

#include <cstring>
#include <vector>

#include "core/error.h"
#include "datasets/file_io.h"

namespace tranq::data {
namespace {

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

// Reads path and checks the magic and the header length; returns the bytes.
std::vector<uint8_t> read_idx(const std::string& path, uint32_t magic, size_t header_bytes,
                              const char* what) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  // The magic first (when there are 4 bytes): the wrong file is a likelier mistake than a short
  // one. Compressed files were already inflated by read_file_bytes (gzip is recognised by its
  // content, whatever the name), so a bad magic is never about a missing .gz suffix.
  if (bytes.size() >= 4 && read_be32(bytes.data()) != magic) {
    const uint32_t got = read_be32(bytes.data());
    const bool images_wanted = magic == kIdxImagesMagic;
    if (got == (images_wanted ? kIdxLabelsMagic : kIdxImagesMagic)) {
      TRANQ_THROW(FormatError,
                  "'{}' is an IDX {} file (magic number 0x{:08x}); the {} file (magic 0x{:08x}) "
                  "is expected here: are the images and labels files swapped?",
                  path, images_wanted ? "label" : "image", got, images_wanted ? "images" : "labels",
                  magic);
    }
    TRANQ_THROW(FormatError,
                "'{}' is not an IDX {} file: magic number 0x{:08x}, expected 0x{:08x} (is it a "
                "file of another format, or damaged?)",
                path, what, got, magic);
  }
  if (bytes.size() < header_bytes) {
    TRANQ_THROW(FormatError,
                "'{}' is truncated: {} bytes, shorter than the {}-byte header of an IDX {} file",
                path, bytes.size(), header_bytes, what);
  }
  return bytes;
}

}  // namespace

Tensor read_idx_images(const std::string& path) {
  std::vector<uint8_t> bytes = read_idx(path, kIdxImagesMagic, 16, "image");
  const int64_t n = read_be32(bytes.data() + 4);
  const int64_t rows = read_be32(bytes.data() + 8);
  const int64_t cols = read_be32(bytes.data() + 12);
  if (rows <= 0 || cols <= 0) {
    TRANQ_THROW(FormatError, "'{}': image size {}x{} in the IDX header, expected positive sizes",
                path, rows, cols);
  }
  // Saturate: a corrupt header must not wrap around to a size that happens to match.
  const uint64_t per_image = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols);
  const uint64_t expected = (n != 0 && per_image > (UINT64_MAX - 16) / static_cast<uint64_t>(n))
                                ? UINT64_MAX
                                : 16 + static_cast<uint64_t>(n) * per_image;
  if (bytes.size() != expected) {
    TRANQ_THROW(FormatError,
                "'{}' is {}: {} bytes, expected exactly {} (16-byte header + {} images of {}x{})",
                path, bytes.size() < expected ? "truncated" : "longer than its header says",
                bytes.size(), expected, n, rows, cols);
  }
  Tensor images = Tensor::empty({n, 1, rows, cols}, DType::u8);
  if (n > 0) std::memcpy(images.raw_data(), bytes.data() + 16, bytes.size() - 16);
  return images;
}

Tensor read_idx_labels(const std::string& path) {
  std::vector<uint8_t> bytes = read_idx(path, kIdxLabelsMagic, 8, "label");
  const int64_t n = read_be32(bytes.data() + 4);
  const uint64_t expected = 8 + static_cast<uint64_t>(n);
  if (bytes.size() != expected) {
    TRANQ_THROW(FormatError,
                "'{}' is {}: {} bytes, expected exactly {} (8-byte header + {} labels)", path,
                bytes.size() < expected ? "truncated" : "longer than its header says", bytes.size(),
                expected, n);
  }
  Tensor labels = Tensor::empty({n}, DType::i32);
  int32_t* out = labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) out[i] = bytes[8 + i];
  return labels;
}

ImageSet load_idx_pair(const std::string& images_path, const std::string& labels_path,
                       int64_t num_classes, int64_t rows, int64_t cols) {
  ImageSet set;
  set.images = read_idx_images(images_path);
  if (set.images.size(0) == 0) {
    TRANQ_THROW(FormatError,
                "'{}' holds no samples: its IDX header gives 0 images; expected at least one",
                images_path);
  }
  if (rows > 0 && cols > 0 && (set.images.size(2) != rows || set.images.size(3) != cols)) {
    TRANQ_THROW(FormatError,
                "'{}' holds images of {}x{} (rows x cols), expected {}x{}; is it a file of "
                "another data set?",
                images_path, set.images.size(2), set.images.size(3), rows, cols);
  }
  set.labels = read_idx_labels(labels_path);
  set.num_classes = num_classes;
  if (set.images.size(0) != set.labels.size(0)) {
    TRANQ_THROW(FormatError,
                "'{}' holds {} labels but '{}' holds {} images; expected one label per image "
                "(are the two files from the same split?)",
                labels_path, set.labels.size(0), images_path, set.images.size(0));
  }
  const int32_t* lab = set.labels.data<int32_t>();
  for (int64_t i = 0; i < set.labels.numel(); ++i) {
    if (lab[i] < 0 || lab[i] >= num_classes) {
      TRANQ_THROW(FormatError, "'{}': label {} of sample {} is out of range, expected 0..{}",
                  labels_path, lab[i], i, num_classes - 1);
    }
  }
  return set;
}

void write_idx_images(const std::string& path, const Tensor& images, bool gzip) {
  check_dtype(images, DType::u8, "write_idx_images", "images");
  TRANQ_CHECK(images.dim() == 4 && images.size(1) == 1,
              "write_idx_images: expected u8 [N, 1, rows, cols], got {}", tensor_str(images));
  Tensor c = images.contiguous();
  std::vector<uint8_t> out;
  out.reserve(16 + c.nbytes());
  put_be32(out, kIdxImagesMagic);
  put_be32(out, static_cast<uint32_t>(c.size(0)));
  put_be32(out, static_cast<uint32_t>(c.size(2)));
  put_be32(out, static_cast<uint32_t>(c.size(3)));
  const uint8_t* p = c.data<uint8_t>();
  out.insert(out.end(), p, p + c.numel());
  write_file_bytes(path, out, gzip);
}

void write_idx_labels(const std::string& path, const Tensor& labels, bool gzip) {
  check_dtype(labels, DType::i32, "write_idx_labels", "labels");
  TRANQ_CHECK(labels.dim() == 1, "write_idx_labels: expected i32 [N], got {}", tensor_str(labels));
  std::vector<int32_t> v = labels.to_vector<int32_t>();
  std::vector<uint8_t> out;
  out.reserve(8 + v.size());
  put_be32(out, kIdxLabelsMagic);
  put_be32(out, static_cast<uint32_t>(v.size()));
  for (int32_t l : v) {
    TRANQ_CHECK(l >= 0 && l < 256, "write_idx_labels: label {} does not fit in a byte", l);
    out.push_back(static_cast<uint8_t>(l));
  }
  write_file_bytes(path, out, gzip);
}

}  // namespace tranq::data
