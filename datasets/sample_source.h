#pragma once
// Where the loader's samples come from: one interface over in-memory sets (MNIST, CIFAR) and
// image folders decoded on the fly (ImageNet). A source turns (index, the sample's random
// stream) into a normalised f32 CHW image; the loader owns order, batching and threads.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "datasets/dataset.h"
#include "datasets/image_folder.h"
#include "datasets/transforms.h"

namespace tranq::data {

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual int64_t size() const = 0;
  virtual int64_t num_classes() const = 0;
  // [C, H, W] of every sample this source produces.
  virtual Shape sample_shape() const = 0;
  virtual int32_t label(int64_t index) const = 0;
  // Writes sample `index`, augmented with draws from rng, to dst (numel(sample_shape()) floats).
  // Returns false, with *error saying why, when the sample cannot be read (a corrupt file): the
  // loader skips it. Called from several threads at once.
  virtual bool load(int64_t index, Rng& rng, float* dst, std::string* error) const = 0;
};

// An in-memory set with crop/flip augmentation (datasets/transforms.h) and normalisation.
class ImageSetSource final : public SampleSource {
 public:
  ImageSetSource(ImageSet set, AugmentOptions augment, Normalization norm);
  int64_t size() const override { return set_.size(); }
  int64_t num_classes() const override { return set_.num_classes; }
  Shape sample_shape() const override;
  int32_t label(int64_t index) const override { return labels_[index]; }
  bool load(int64_t index, Rng& rng, float* dst, std::string* error) const override;
  const ImageSet& set() const { return set_; }

 private:
  ImageSet set_;
  AugmentOptions augment_;
  PixelNormalizer norm_;
  const uint8_t* pixels_;
  const int32_t* labels_;
};

// A folder of JPEG files per class, decoded and transformed per sample (image_folder.h).
class FolderSource final : public SampleSource {
 public:
  FolderSource(ImageFolder folder, FolderTransform transform);
  int64_t size() const override { return static_cast<int64_t>(folder_.samples.size()); }
  int64_t num_classes() const override { return static_cast<int64_t>(folder_.classes.size()); }
  Shape sample_shape() const override { return {3, transform_.size, transform_.size}; }
  int32_t label(int64_t index) const override { return folder_.samples[index].label; }
  bool load(int64_t index, Rng& rng, float* dst, std::string* error) const override;
  const ImageFolder& folder() const { return folder_; }

 private:
  ImageFolder folder_;
  FolderTransform transform_;
};

}  // namespace tranq::data
