#pragma once
// ImageNet-style folders of JPEG files (DIR/<class>/**/*.jpg) and the per-sample transform that
// turns one file into a normalised f32 CHW crop, torchvision-compatible in meaning:
//   train: RandomResizedCrop(size, scale, ratio) + RandomHorizontalFlip(0.5) + ToTensor +
//          Normalize
//   eval:  Resize(resize) + CenterCrop(size) + ToTensor + Normalize
// Decoding, resizing and cropping are fused: the crop box is chosen on the header's size, the
// file is decoded at the smallest DCT scale (1/1 .. 1/8) that keeps at least size x size pixels
// in the box, and the box is resampled once straight into the output size.
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "datasets/dataset.h"

namespace tranq::data {

struct FolderSample {
  std::string path;
  int32_t label = 0;
};

struct ImageFolder {
  std::string root;
  std::vector<std::string> classes;  // label i is classes[i]
  std::vector<FolderSample> samples;
  int64_t ignored_files = 0;    // files that are not .jpg / .jpeg
  std::string ignored_example;  // the bytewise first path of those files ("" when none)
};

// torchvision ImageFolder semantics, restricted to JPEG: classes are the names of the
// subdirectories of dir (symbolic links followed, hidden ones included as torchvision does),
// sorted bytewise; a sample's label is its class's index. Samples are the files found
// recursively in each class directory whose extension is .jpg or .jpeg in any case, in
// torchvision's order: class by class, within a class by containing directory, then by file
// name (for a flat class directory: by path). Every other file, inside class directories or
// directly in dir, is counted in ignored_files. A class directory without images keeps its label
// (a training split refuses it: require_images_in_every_class).
// Throws IoError (naming dir and the expected layout DIR/<class>/*.jpg) if dir is missing or
// unreadable, holds no class directory, or no image at all ("... holds no samples", with the
// ignored files' count and first name when there are some).
ImageFolder scan_image_folder(const std::string& dir);
// The same scan, labelled with a given class list instead of dir's own: the evaluation split is
// labelled with the training split's classes, so that label i means the same class in both even
// when the evaluation split lacks some class directories (they just have no samples). The
// result's classes are `classes`. A class directory of dir that is not in `classes` is a
// FormatError naming the directory and `classes_from` (where the list came from, e.g. the
// training split's directory). Throws IoError as scan_image_folder(dir) does.
ImageFolder scan_image_folder(const std::string& dir, const std::vector<std::string>& classes,
                              const std::string& classes_from);
// For a training split: ValueError naming the root and every class directory that holds no
// .jpg/.jpeg file (a class the model would be built for but never see), saying that only those
// extensions are read and, when files were ignored, how many and the first of them. torchvision's
// ImageFolder refuses such a class too ("Found no valid file for the classes ...").
void require_images_in_every_class(const ImageFolder& f);
// "N files ignored, e.g. 'PATH'" (ignored_files, ignored_example), or "" when none was.
std::string ignored_files_note(const ImageFolder& f);

// The class names of an image folder, in label order: the subdirectories of dir, sorted
// bytewise (what scan_image_folder(dir) labels with). Throws IoError like scan_image_folder.
std::vector<std::string> list_image_classes(const std::string& dir);

struct FolderTransform {
  int64_t size = 224;    // output crop (square)
  int64_t resize = 256;  // eval: shorter side before the centre crop
  bool train = true;     // train: RandomResizedCrop + flip; eval: resize + centre crop
  double scale_lo = 0.08, scale_hi = 1.0, ratio_lo = 3.0 / 4.0, ratio_hi = 4.0 / 3.0;
  bool horizontal_flip = true;  // train only, p = 0.5
  Normalization norm;           // e.g. imagenet_normalization(); empty: pixel / 255
};

// Reads the file at path and writes its transformed image to dst as f32 CHW [3, size, size],
// x = (pixel / 255 - mean[c]) / std[c] (PixelNormalizer). Steps: header; box on the full-size
// image (train: random_resized_crop_box; eval: eval_crop_box_exact); d = choose_scale_denom(box,
// size); decode at 1/d; box mapped into the decoded image's coordinates; bilinear resample of the
// box to size x size (train: taps clipped to the box, as crop-then-resize; eval: taps may reach
// outside it, as resize-then-crop; see resize.h); flip; normalise.
// Random draws, from rng only and only in train mode: the box (see random_resized_crop_box for
// its draws), then, when horizontal_flip is set, the flip as rng.bernoulli(0.5). Eval mode draws
// nothing. A fixed rng state therefore gives bit-identical output.
// Returns false and sets *error (if error is not null) to "PATH: reason" for a file that cannot
// be read, is not a complete, decodable JPEG, or claims more than kMaxJpegPixels (jpeg.h)
// pixels (a decompression bomb, refused before any pixel memory is allocated); never throws for
// file content. Throws ValueError for bad arguments (sizes, scale or ratio ranges,
// normalisation, null dst). Safe to call from several threads at once (each call owns its
// decoder and buffers).
bool load_folder_sample(const std::string& path, const FolderTransform& t, Rng& rng, float* dst,
                        std::string* error);

// The ImageNet statistics torchvision uses: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
Normalization imagenet_normalization();

}  // namespace tranq::data
