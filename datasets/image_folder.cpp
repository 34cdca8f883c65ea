#include "datasets/image_folder.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>

#include "core/error.h"
#include "datasets/jpeg.h"
#include "datasets/resize.h"
#include "datasets/transforms.h"

namespace tranq::data {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLayout =
    "expected the layout DIR/<class>/*.jpg (one subdirectory per class, holding .jpg or .jpeg "
    "files)";

bool is_jpeg_name(const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == "jpg" || ext == "jpeg";
}

// strerror is not thread-safe; samples are loaded from many threads.
std::string errno_message() {
  return std::error_code(errno, std::generic_category()).message();
}

// A plain whole-file read (file_io's reader goes through zlib and over-allocates, both wasted on
// a JPEG that is read once per sample per epoch). Returns false with a reason on failure.
bool read_whole_file(const std::string& path, std::vector<uint8_t>* out, std::string* reason) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    *reason = "cannot open: " + errno_message();
    return false;
  }
  struct stat st;
  bool ok = ::fstat(fileno(f), &st) == 0;
  if (!ok) {
    *reason = "cannot stat: " + errno_message();
  } else if (!S_ISREG(st.st_mode)) {
    *reason = "not a regular file";
    ok = false;
  } else {
    out->resize(static_cast<size_t>(st.st_size));
    const size_t n = out->empty() ? 0 : std::fread(out->data(), 1, out->size(), f);
    if (n != out->size()) {
      *reason = fmt::format("read {} of {} bytes", n, out->size());
      ok = false;
    }
  }
  std::fclose(f);
  return ok;
}

void check_transform(const FolderTransform& t) {
  TRANQ_CHECK(t.size > 0 && t.size <= 8192, "image transform: size must be in 1..8192, got {}",
              t.size);
  if (t.train) {
    TRANQ_CHECK(t.scale_lo >= 0 && t.scale_lo <= t.scale_hi && t.scale_hi > 0,
                "image transform: scale range [{}, {}] must satisfy 0 <= lo <= hi, hi > 0",
                t.scale_lo, t.scale_hi);
    TRANQ_CHECK(t.ratio_lo > 0 && t.ratio_lo <= t.ratio_hi,
                "image transform: ratio range [{}, {}] must satisfy 0 < lo <= hi", t.ratio_lo,
                t.ratio_hi);
  } else {
    TRANQ_CHECK(t.resize >= t.size,
                "image transform: eval resize ({}) must be >= the crop size ({}); torchvision "
                "would pad the crop",
                t.resize, t.size);
  }
}

}  // namespace

namespace {

// Counts an ignored file, keeping the bytewise first path as the example (directory order is
// the file system's, so the first one met would vary).
void note_ignored(const std::string& path, ImageFolder* f) {
  if (f->ignored_files++ == 0 || path < f->ignored_example) f->ignored_example = path;
}

// dir's subdirectories (the class directories), sorted; the plain files directly in dir are
// noted as ignored in *top.
std::vector<std::string> read_class_dirs(const std::string& dir, ImageFolder* top) {
  std::error_code ec;
  const fs::file_status st = fs::status(dir, ec);
  if (!fs::exists(st)) {
    TRANQ_THROW(IoError, "image folder '{}' does not exist; {}", dir, kLayout);
  }
  if (!fs::is_directory(st)) {
    TRANQ_THROW(IoError, "image folder '{}' is not a directory; {}", dir, kLayout);
  }
  std::vector<std::string> names;
  try {
    for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
      if (e.is_directory()) {
        names.push_back(e.path().filename().string());
      } else if (e.is_regular_file()) {
        note_ignored(e.path().string(), top);
      }
    }
  } catch (const fs::filesystem_error& e) {
    TRANQ_THROW(IoError, "cannot read image folder '{}': {}", dir, e.what());
  }
  if (names.empty()) {
    TRANQ_THROW(IoError, "image folder '{}' has no class directories; {}", dir, kLayout);
  }
  // std::string compares as unsigned bytes: Python's order on the UTF-8 names.
  std::sort(names.begin(), names.end());
  return names;
}

// Appends the JPEG files under class_dir, in torchvision's order, as samples of `label`; every
// other file is counted in f->ignored_files.
void add_class_samples(const fs::path& class_dir, int32_t label, ImageFolder* f) {
  // torchvision walks each class with os.walk, sorted by directory, then file name.
  std::vector<std::pair<std::string, std::string>> files;
  for (fs::recursive_directory_iterator
           it(class_dir, fs::directory_options::follow_directory_symlink),
       end;
       it != end; ++it) {
    if (!it->is_regular_file()) continue;
    std::string name = it->path().filename().string();
    if (is_jpeg_name(name)) {
      files.emplace_back(it->path().parent_path().string(), std::move(name));
    } else {
      note_ignored(it->path().string(), f);
    }
  }
  std::sort(files.begin(), files.end());
  for (auto& [parent, name] : files) {
    FolderSample s;
    s.path = (fs::path(parent) / name).string();
    s.label = label;
    f->samples.push_back(std::move(s));
  }
}

// Samples of the class directories `dirs` of dir, labelled by their index in `classes` (every
// name of dirs is in classes), class by class in label order.
ImageFolder scan_labelled(const std::string& dir, const std::vector<std::string>& dirs,
                          const ImageFolder& top, std::vector<std::string> classes) {
  ImageFolder f;
  f.root = dir;
  f.classes = std::move(classes);
  f.ignored_files = top.ignored_files;
  f.ignored_example = top.ignored_example;
  try {
    for (size_t label = 0; label < f.classes.size(); ++label) {
      if (!std::binary_search(dirs.begin(), dirs.end(), f.classes[label])) continue;
      add_class_samples(fs::path(dir) / f.classes[label], static_cast<int32_t>(label), &f);
    }
  } catch (const fs::filesystem_error& e) {
    TRANQ_THROW(IoError, "cannot read image folder '{}': {}", dir, e.what());
  }
  if (f.samples.empty()) {
    const std::string note = ignored_files_note(f);
    TRANQ_THROW(IoError,
                "image folder '{}' holds no samples: {} class directories but no .jpg/.jpeg "
                "files{}; {}",
                dir, dirs.size(), note.empty() ? "" : " (" + note + ")", kLayout);
  }
  return f;
}

}  // namespace

std::vector<std::string> list_image_classes(const std::string& dir) {
  ImageFolder top;
  return read_class_dirs(dir, &top);
}

ImageFolder scan_image_folder(const std::string& dir) {
  ImageFolder top;
  std::vector<std::string> dirs = read_class_dirs(dir, &top);
  return scan_labelled(dir, dirs, top, dirs);
}

std::string ignored_files_note(const ImageFolder& f) {
  if (f.ignored_files == 0) return "";
  return fmt::format("{} file{} ignored, e.g. '{}'", f.ignored_files,
                     f.ignored_files == 1 ? "" : "s", f.ignored_example);
}

void require_images_in_every_class(const ImageFolder& f) {
  constexpr int64_t kNamedClasses = 10;  // ImageNet has 1000 classes: name a few, count the rest
  std::vector<bool> has(f.classes.size(), false);
  for (const FolderSample& s : f.samples) has[static_cast<size_t>(s.label)] = true;
  std::string empty;
  int64_t count = 0;
  for (size_t i = 0; i < has.size(); ++i) {
    if (has[i]) continue;
    if (count < kNamedClasses) empty += (count ? ", '" : "'") + f.classes[i] + "'";
    ++count;
  }
  if (count == 0) return;
  if (count > kNamedClasses) empty += fmt::format(" and {} more", count - kNamedClasses);
  const std::string note = ignored_files_note(f);
  TRANQ_THROW(ValueError,
              "image folder '{}': found no image for the class{} {} ({} of {} classes); only "
              ".jpg and .jpeg files are read{}; every training class needs at least one image: "
              "add images, convert them to JPEG, or remove the class directory",
              f.root, count == 1 ? "" : "es", empty, count, f.classes.size(),
              note.empty() ? "" : " (" + note + ")");
}

ImageFolder scan_image_folder(const std::string& dir, const std::vector<std::string>& classes,
                              const std::string& classes_from) {
  ImageFolder top;
  const std::vector<std::string> dirs = read_class_dirs(dir, &top);
  std::vector<std::string> sorted = classes;
  std::sort(sorted.begin(), sorted.end());
  TRANQ_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(),
              "scan_image_folder: the class list from '{}' names a class twice", classes_from);
  for (const std::string& name : dirs) {
    if (!std::binary_search(sorted.begin(), sorted.end(), name)) {
      TRANQ_THROW(FormatError,
                  "class directory '{}' is not a class of '{}': labels follow the training "
                  "split's class directories, so every class directory of '{}' must also be "
                  "one of '{}'; remove it, or add '{}' and train again",
                  (fs::path(dir) / name).string(), classes_from, dir, classes_from,
                  (fs::path(classes_from) / name).string());
    }
  }
  return scan_labelled(dir, dirs, top, classes);
}

bool load_folder_sample(const std::string& path, const FolderTransform& t, Rng& rng, float* dst,
                        std::string* error) {
  TRANQ_CHECK(dst != nullptr, "load_folder_sample: null output buffer");
  check_transform(t);
  const PixelNormalizer norm(t.norm, 3);
  auto fail = [&](const std::string& message) {
    if (error) *error = message;
    return false;
  };
  std::vector<uint8_t> bytes;
  std::string reason;
  if (!read_whole_file(path, &bytes, &reason)) return fail(path + ": " + reason);
  const int64_t S = t.size;
  std::vector<uint8_t> crop(static_cast<size_t>(S * S * 3));
  try {
    const JpegHeader hdr = read_jpeg_header(bytes.data(), bytes.size(), path);
    if (hdr.width <= 0 || hdr.height <= 0) {
      TRANQ_THROW(FormatError, "{}: JPEG header gives an empty {}x{} image", path, hdr.width,
                  hdr.height);
    }
    BoxF box;
    ResizeEdge edge;
    if (t.train) {
      const CropBox b = random_resized_crop_box(hdr.height, hdr.width, rng, t.scale_lo, t.scale_hi,
                                                t.ratio_lo, t.ratio_hi);
      box = {static_cast<double>(b.top), static_cast<double>(b.left), static_cast<double>(b.height),
             static_cast<double>(b.width)};
      edge = ResizeEdge::kBox;  // RandomResizedCrop crops, then resizes
    } else {
      box = eval_crop_box_exact(hdr.height, hdr.width, t.resize, t.size);
      edge = ResizeEdge::kImage;  // Resize sees the whole image, CenterCrop comes after
    }
    // floor(): a fractional eval box must hold the full size x size after scaling too.
    const int denom =
        choose_scale_denom(std::max<int64_t>(1, static_cast<int64_t>(box.width)),
                           std::max<int64_t>(1, static_cast<int64_t>(box.height)), S, S);
    const RgbImage img = decode_jpeg(bytes.data(), bytes.size(), denom, path);
    if (denom != 1) {
      // libjpeg's ceil rounding makes the scale slightly above 1/denom; use the exact ratio.
      const double sy = static_cast<double>(img.height) / static_cast<double>(hdr.height);
      const double sx = static_cast<double>(img.width) / static_cast<double>(hdr.width);
      box.top *= sy;
      box.left *= sx;
      box.height = std::min(box.height * sy, static_cast<double>(img.height) - box.top);
      box.width = std::min(box.width * sx, static_cast<double>(img.width) - box.left);
    }
    resize_bilinear_box(img.pixels.data(), img.height, img.width, 3, box, edge, crop.data(), S, S);
  } catch (const FormatError& e) {
    return fail(e.what());
  }
  const bool flip = t.train && t.horizontal_flip && rng.bernoulli(0.5);
  for (int64_t c = 0; c < 3; ++c) {
    float* plane = dst + c * S * S;
    for (int64_t y = 0; y < S; ++y) {
      const uint8_t* row = crop.data() + y * S * 3 + c;
      float* out = plane + y * S;
      if (flip) {
        for (int64_t x = 0; x < S; ++x) out[x] = norm(c, row[(S - 1 - x) * 3]);
      } else {
        for (int64_t x = 0; x < S; ++x) out[x] = norm(c, row[x * 3]);
      }
    }
  }
  return true;
}

Normalization imagenet_normalization() {
  Normalization n;
  n.mean = {0.485f, 0.456f, 0.406f};
  n.std = {0.229f, 0.224f, 0.225f};
  return n;
}

}  // namespace tranq::data
