#include "datasets/sources.h"

#include <filesystem>

#include "core/error.h"
#include "datasets/registry.h"

namespace tranq::data {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kDefaultFolderSize = 224;

void check_known(const std::string& name) {
  for (const std::string& n : all_dataset_names())
    if (n == name) return;
  std::string known;
  for (const std::string& n : all_dataset_names()) known += (known.empty() ? "" : ", ") + n;
  TRANQ_THROW(ValueError, "unknown data set '{}'; expected one of: {}", name, known);
}

// The class authority of an image-folder data set (see folder_classes).
std::string folder_class_dir(const std::string& dir) {
  const fs::path train = fs::path(dir) / "train";
  return fs::is_directory(train) ? train.string() : folder_split_dir(dir, "test");
}

}  // namespace

bool is_folder_dataset(const std::string& name) {
  return name == "imagenet" || name == "folder";
}

std::vector<std::string> all_dataset_names() {
  std::vector<std::string> names = dataset_names();
  names.push_back("imagenet");
  names.push_back("folder");
  return names;
}

std::string folder_split_dir(const std::string& dir, const std::string& split) {
  TRANQ_CHECK(split == "train" || split == "test", "split must be train or test, got '{}'", split);
  if (split == "train") {
    const fs::path p = fs::path(dir) / "train";
    TRANQ_CHECK_AS(IoError, fs::is_directory(p),
                   "{} not found: an image-folder data set needs DIR/train/<class>/*.jpg and "
                   "DIR/val/<class>/*.jpg",
                   p.string());
    return p.string();
  }
  for (const char* name : {"val", "test"}) {
    const fs::path p = fs::path(dir) / name;
    if (fs::is_directory(p)) return p.string();
  }
  TRANQ_THROW(IoError,
              "neither {0}/val nor {0}/test found: an image-folder data set needs "
              "DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg",
              dir);
}

std::shared_ptr<SampleSource> open_dataset(const std::string& name, const std::string& dir,
                                           const std::string& split, const SourceOptions& opt) {
  check_known(name);
  if (!is_folder_dataset(name)) {
    TRANQ_CHECK(opt.image_size == 0,
                "--image-size applies to image-folder data sets only; {} images keep their size",
                name);
    ImageSet set = load_dataset(name, dir, split);
    const bool train = split == "train" && opt.augment;
    return std::make_shared<ImageSetSource>(std::move(set), default_augmentation(name, train),
                                            standard_normalization(name));
  }
  TRANQ_CHECK(opt.image_size >= 0, "--image-size must be positive, got {}", opt.image_size);
  FolderTransform t;
  t.size = opt.image_size > 0 ? opt.image_size : kDefaultFolderSize;
  // torchvision's 256 / 224 ratio between the eval resize and the crop.
  t.resize = (t.size * 256 + 112) / 224;
  t.train = split == "train" && opt.augment;
  t.norm = imagenet_normalization();
  const std::string split_dir = folder_split_dir(dir, split);
  const std::string class_dir = folder_class_dir(dir);
  ImageFolder folder = class_dir == split_dir
                           ? scan_image_folder(split_dir)
                           : scan_image_folder(split_dir, list_image_classes(class_dir), class_dir);
  // A class without images would still be a class of the model, never trained on. The test
  // split may lack classes (it is labelled with the training split's list).
  if (split == "train") require_images_in_every_class(folder);
  return std::make_shared<FolderSource>(std::move(folder), t);
}

std::vector<std::string> folder_classes(const std::string& dir) {
  return list_image_classes(folder_class_dir(dir));
}

DatasetShape dataset_shape(const std::string& name, const std::string& dir) {
  check_known(name);
  if (!is_folder_dataset(name)) return {dataset_channels(name), dataset_num_classes(name)};
  if (dir.empty()) {
    TRANQ_CHECK(name == "imagenet",
                "the class count of a 'folder' data set comes from its directory: pass --data DIR");
    return {3, 1000};
  }
  const int64_t classes = static_cast<int64_t>(folder_classes(dir).size());
  return {3, classes};
}

}  // namespace tranq::data
