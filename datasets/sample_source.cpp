#include "datasets/sample_source.h"

#include <utility>

#include "core/error.h"
#include "datasets/transforms.h"

namespace tranq::data {

ImageSetSource::ImageSetSource(ImageSet set, AugmentOptions augment, Normalization norm)
    : set_(std::move(set)), augment_(augment), norm_(norm, set_.channels()) {
  TRANQ_CHECK(augment_.crop_padding >= 0, "crop padding must be >= 0, got {}",
              augment_.crop_padding);
  pixels_ = set_.images.data<uint8_t>();
  labels_ = set_.labels.data<int32_t>();
}

Shape ImageSetSource::sample_shape() const {
  return {set_.channels(), set_.height(), set_.width()};
}

bool ImageSetSource::load(int64_t index, Rng& rng, float* dst, std::string*) const {
  const int64_t c = set_.channels(), h = set_.height(), w = set_.width();
  const CropFlip choice = draw_augmentation(augment_, rng);
  augment_normalize(pixels_ + index * c * h * w, c, h, w, choice, norm_, dst);
  return true;
}

FolderSource::FolderSource(ImageFolder folder, FolderTransform transform)
    : folder_(std::move(folder)), transform_(std::move(transform)) {
  TRANQ_CHECK(!folder_.samples.empty(), "image folder {} holds no images", folder_.root);
  TRANQ_CHECK(transform_.size > 0, "image size must be positive, got {}", transform_.size);
}

bool FolderSource::load(int64_t index, Rng& rng, float* dst, std::string* error) const {
  return load_folder_sample(folder_.samples[static_cast<size_t>(index)].path, transform_, rng, dst,
                            error);
}

}  // namespace tranq::data
