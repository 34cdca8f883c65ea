// The standard sets by name: where their files live and their customary statistics.
#include "datasets/registry.h"

#include <sys/stat.h>

#include "core/error.h"
#include "datasets/cifar.h"
#include "datasets/file_io.h"
#include "datasets/idx.h"

namespace tranq::data {
namespace {

// Every MNIST and Fashion-MNIST image is 28x28: another size means the wrong or a damaged file.
constexpr int64_t kIdxSide = 28;

bool is_idx_set(const std::string& name) {
  return name == "mnist" || name == "fashion-mnist";
}

void check_name(const std::string& name) {
  for (const std::string& n : dataset_names()) {
    if (n == name) return;
  }
  TRANQ_THROW(ValueError,
              "unknown dataset '{}'; expected one of: mnist, fashion-mnist, cifar10, cifar100",
              name);
}

void check_split(const std::string& split) {
  if (split != "train" && split != "test") {
    TRANQ_THROW(ValueError, "unknown split '{}'; expected 'train' or 'test'", split);
  }
}

std::string join_names(const std::vector<std::string>& names, const char* suffix) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i] + suffix;
  return s;
}

bool dir_exists(const std::string& dir) {
  struct stat st;
  return ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

[[noreturn]] void throw_missing(const std::string& name, const std::string& path,
                                const std::string& dir, const std::string& expected) {
  std::string why = dir_exists(dir) ? "" : fmt::format(" (the directory '{}' does not exist)", dir);
  TRANQ_THROW(IoError, "cannot find '{}'{}: the {} dataset expects these files in '{}': {}", path,
              why, name, dir, expected);
}

// Plain file if present, else the .gz one; IoError listing the expected files if neither.
std::string find_idx_file(const std::string& name, const std::string& dir,
                          const std::string& file) {
  const std::string plain = join_path(dir, file);
  if (file_exists(plain)) return plain;
  if (file_exists(plain + ".gz")) return plain + ".gz";
  const std::vector<std::string> all = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  throw_missing(name, plain + "[.gz]", dir, join_names(all, "[.gz]"));
}

ImageSet load_idx_dataset(const std::string& name, const std::string& dir,
                          const std::string& split) {
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images = find_idx_file(name, dir, prefix + "-images-idx3-ubyte");
  const std::string labels = find_idx_file(name, dir, prefix + "-labels-idx1-ubyte");
  // Both splits are checked against the fixed size, so train and test always agree.
  return load_idx_pair(images, labels, 10, kIdxSide, kIdxSide);
}

ImageSet load_cifar_dataset(const std::string& name, const std::string& dir,
                            const std::string& split) {
  const bool c100 = name == "cifar100";
  const std::string subdir = c100 ? "cifar-100-binary" : "cifar-10-batches-bin";
  std::vector<std::string> files;
  if (c100) {
    files = {split == "train" ? "train.bin" : "test.bin"};
  } else if (split == "train") {
    for (int i = 1; i <= 5; ++i) files.push_back("data_batch_" + std::to_string(i) + ".bin");
  } else {
    files = {"test_batch.bin"};
  }
  // The archives unpack into a subdirectory; accept either it or its parent.
  std::string base = dir;
  if (!file_exists(join_path(dir, files[0])) &&
      file_exists(join_path(join_path(dir, subdir), files[0]))) {
    base = join_path(dir, subdir);
  }
  std::vector<std::string> paths;
  for (const std::string& f : files) {
    paths.push_back(join_path(base, f));
    if (!file_exists(paths.back())) {
      const std::vector<std::string> all =
          c100
              ? std::vector<std::string>{"train.bin", "test.bin"}
              : std::vector<std::string>{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                         "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
      throw_missing(name, paths.back(), dir,
                    join_names(all, "") + " (directly or under " + subdir + "/)");
    }
  }
  return read_cifar_files(paths, c100 ? CifarKind::cifar100 : CifarKind::cifar10);
}

}  // namespace

std::vector<std::string> dataset_names() {
  return {"mnist", "fashion-mnist", "cifar10", "cifar100"};
}

int64_t dataset_num_classes(const std::string& name) {
  check_name(name);
  return name == "cifar100" ? 100 : 10;
}

int64_t dataset_channels(const std::string& name) {
  check_name(name);
  return is_idx_set(name) ? 1 : 3;
}

ImageSet load_dataset(const std::string& name, const std::string& dir, const std::string& split) {
  check_name(name);
  check_split(split);
  return is_idx_set(name) ? load_idx_dataset(name, dir, split)
                          : load_cifar_dataset(name, dir, split);
}

Normalization standard_normalization(const std::string& name) {
  check_name(name);
  if (name == "fashion-mnist") return {{0.2860f}, {0.3530f}};
  if (name == "mnist") return {{0.1307f}, {0.3081f}};
  if (name == "cifar10") return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
  return {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}};
}

AugmentOptions default_augmentation(const std::string& name, bool train) {
  check_name(name);
  if (!train) return {};
  if (name == "mnist") return {2, false};
  if (name == "fashion-mnist") return {2, true};
  return {4, true};
}

}  // namespace tranq::data
