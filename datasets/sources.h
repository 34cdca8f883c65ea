#pragma once
// Every data set the CLI knows, by name, as a SampleSource for the loader: the in-memory sets
// of datasets/registry.h and the image-folder sets
//   imagenet  DIR/train/<class>/*.JPEG and DIR/val/<class>/*.JPEG (torchvision's ImageFolder
//             layout; classes sorted by name), ImageNet statistics
//   folder    any data set in the same layout (DIR/test is used when DIR/val is absent)
// Image-folder training uses torchvision's reference recipe, RandomResizedCrop(size, 0.08-1,
// 3/4-4/3) + horizontal flip; evaluation resizes the shorter side to size * 256 / 224 and takes
// the centre size x size crop.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/sample_source.h"

namespace tranq::data {

struct SourceOptions {
  bool augment = true;     // the training recipe (train split only); false: the eval transform
  int64_t image_size = 0;  // image-folder sets: output size (0: 224); others: must be 0
};

bool is_folder_dataset(const std::string& name);
// load_dataset's names, then "imagenet" and "folder".
std::vector<std::string> all_dataset_names();
// The classes of an image-folder data set in label order: the class directories of DIR/train,
// sorted, or those of the test split when DIR/train is absent (an evaluation-only copy). Both
// splits are labelled with this list (open_dataset), so label i is the same class in both and
// a class missing from the test split only has no samples there. Throws IoError as
// list_image_classes does.
std::vector<std::string> folder_classes(const std::string& dir);
// The directory of an image-folder split: DIR/train for "train"; DIR/val, else DIR/test, for
// "test". Throws IoError naming what was looked for when absent.
std::string folder_split_dir(const std::string& dir, const std::string& split);

// Opens split "train" or "test" of a data set. Throws as load_dataset / scan_image_folder do.
// Image folders: the test split is labelled with folder_classes(dir) and reports its size as
// num_classes(); a test class directory that is not a class of DIR/train is a FormatError; a
// class of the train split without a .jpg/.jpeg image is a ValueError naming it
// (require_images_in_every_class), while the test split may lack classes.
std::shared_ptr<SampleSource> open_dataset(const std::string& name, const std::string& dir,
                                           const std::string& split, const SourceOptions& opt);

struct DatasetShape {
  int64_t channels = 0, classes = 0;
};
// Input channels and class count without reading images: fixed for the standard sets; for
// image-folder sets folder_classes(dir) is counted, and
// imagenet without a directory is 3 channels, 1000 classes. "folder" needs dir.
DatasetShape dataset_shape(const std::string& name, const std::string& dir);

}  // namespace tranq::data
