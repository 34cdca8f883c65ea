// tranq on an ImageNet-style JPEG folder through the CLI: odd image sizes, a grayscale image,
// a corrupt file (skipped, named and counted), resnet18 training steps, eval, convert and
// --init-from of the converted weights.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "core/safetensors.h"
#include "datasets/jpeg.h"
#include "gradcheck.h"

namespace fs = std::filesystem;
using namespace tranq;

namespace {

void write_bytes(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Class k is a colour (red, green, blue) with a gradient, so the classes differ.
std::vector<uint8_t> class_image(int k, int64_t w, int64_t h, int components) {
  std::vector<uint8_t> px(static_cast<size_t>(w * h * components));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int c = 0; c < components; ++c) {
        const int base = components == 1 ? 60 + 70 * k : (c == k ? 220 : 30);
        px[static_cast<size_t>((y * w + x) * components + c)] =
            static_cast<uint8_t>(base + (x + y) % 30);
      }
  return px;
}

class CliFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            ("tranq_folder_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    data_ = root_ / "data";
    const char* classes[] = {"cat", "dog", "eel"};
    const int64_t sizes[][2] = {{37, 53}, {80, 61}, {64, 64}};
    for (const char* split : {"train", "val"}) {
      for (int k = 0; k < 3; ++k) {
        const fs::path dir = data_ / split / classes[k];
        fs::create_directories(dir);
        for (int i = 0; i < 3; ++i) {
          const int64_t w = sizes[i][0], h = sizes[i][1];
          const int comps = (k == 1 && i == 0) ? 1 : 3;  // one grayscale image per split
          const auto px = class_image(k, w, h, comps);
          write_bytes(dir / ("img" + std::to_string(i) + ".JPEG"),
                      data::encode_jpeg(px.data(), w, h, comps, 90));
        }
      }
    }
    // A corrupt JPEG (truncated after the header) and a file that is not an image at all.
    const auto px = class_image(0, 40, 40, 3);
    auto bytes = data::encode_jpeg(px.data(), 40, 40, 3, 90);
    bytes.resize(bytes.size() / 3);
    write_bytes(data_ / "train" / "cat" / "broken.jpg", bytes);
    std::ofstream(data_ / "train" / "dog" / "notes.txt") << "not an image";
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string common() const {
    return "--dataset folder --data " + data_.string() +
           " --model resnet18 --image-size 64 --batch-size 5 --lr 0.01 --threads 2 --workers 2";
  }
  fs::path root_, data_;
};

}  // namespace

TEST_F(CliFolder, TrainsResnet18SkippingTheCorruptFile) {
  const fs::path run = root_ / "run";
  auto r = test::run_cli("train " + common() + " --epochs 1 --out " + run.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("test_acc="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("broken.jpg"), std::string::npos) << "the corrupt file is named: " << r.out;
  const std::string metrics = test::read_bytes(run / "metrics.jsonl");
  EXPECT_NE(metrics.find("\"skipped_images\":1"), std::string::npos) << metrics;
  // 10 JPEG files, one unreadable: 9 images in 2 steps of batch 5.
  EXPECT_NE(metrics.find("\"step\":2"), std::string::npos) << metrics;

  r = test::run_cli("eval --dataset folder --data " + data_.string() +
                    " --model resnet18 --image-size 64 --weights " +
                    (run / "model.safetensors").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("test_acc="), std::string::npos) << r.out;

  // convert -> torchvision-named weights that a new run loads strictly.
  const fs::path tv = root_ / "tv.safetensors";
  r = test::run_cli("convert --model resnet18 --weights " +
                    (run / "checkpoint.safetensors").string() + " --out " + tv.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("3 input channels, 3 classes"), std::string::npos) << r.out;
  const auto converted = load_safetensors(tv.string());
  const auto trained = load_safetensors((run / "model.safetensors").string());
  ASSERT_EQ(converted.tensors.size(), trained.tensors.size());
  for (size_t i = 0; i < converted.tensors.size(); ++i) {
    EXPECT_EQ(converted.tensors[i].first, trained.tensors[i].first);
    EXPECT_TRUE(test::bitwise_equal(converted.tensors[i].second, trained.tensors[i].second))
        << converted.tensors[i].first;
  }
  r = test::run_cli("train " + common() + " --epochs 1 --max-steps 1 --init-from " + tv.string() +
                    " --out " + (root_ / "run2").string());
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST_F(CliFolder, BadFolderGetsAClearError) {
  auto r = test::run_cli("train --dataset folder --data " + (root_ / "nowhere").string() +
                         " --model resnet18 --epochs 1 --out " + (root_ / "run").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("DIR/train/<class>"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(root_ / "run" / "checkpoint.safetensors"));
  r = test::run_cli("train --dataset imagenet --data " + data_.string() +
                    " --model resnet18 --image-size -3 --epochs 1 --out " +
                    (root_ / "run").string());
  EXPECT_EQ(r.code, 2) << r.out;
}
