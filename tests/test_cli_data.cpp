// The CLI and its data: eval checks its flags before the data set is opened, weights made for
// another data set are blamed on --dataset, --resume refuses other training data (and still
// resumes checkpoints written before that was saved), a training class without JPEG images is
// refused by name, ignored files are noted, a batch size near INT64_MAX works and a run too
// long to count its steps is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"
#include "core/safetensors.h"
#include "datasets/jpeg.h"
#include "models/registry.h"

namespace fs = std::filesystem;
using namespace tranq;
using tranq::test::read_bytes;
using tranq::test::run_cli;

namespace {

class CliData : public tranq::test::TempRunDir {
 protected:
  void SetUp() override { make_dirs(96, 40); }
  std::string train_args(const fs::path& data, const fs::path& out,
                         const std::string& extra = "") const {
    return "train --dataset fashion-mnist --data " + data.string() +
           " --model resnet20 --epochs 2 --batch-size 16 --lr 0.05 --seed 3 --threads 1 "
           "--workers 1 --log-every 2 --out " +
           out.string() + " " + extra;
  }
  // Untrained ResNet-20 weights for `channels`-channel input and `classes` classes.
  fs::path weights_for(int64_t channels, int64_t classes) const {
    const fs::path p =
        root_ / ("w" + std::to_string(channels) + "x" + std::to_string(classes) + ".safetensors");
    save_safetensors(p.string(), create_model("resnet20", channels, classes, 0)->state_dict(), {});
    return p;
  }
  // DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg with `per_class` training images a class.
  void write_folder(const fs::path& dir, const std::vector<std::string>& classes,
                    int per_class) const {
    std::vector<uint8_t> px(12 * 10 * 3);
    for (size_t k = 0; k < classes.size(); ++k) {
      for (const char* split : {"train", "val"}) {
        const fs::path d = dir / split / classes[k];
        fs::create_directories(d);
        const int n = std::string(split) == "train" ? per_class : 2;
        for (int i = 0; i < n; ++i) {
          for (size_t p = 0; p < px.size(); ++p) px[p] = static_cast<uint8_t>(p * (k + 1) + i);
          const auto jpg = data::encode_jpeg(px.data(), 12, 10, 3, 90);
          std::ofstream(d / (std::to_string(i) + ".jpg"), std::ios::binary)
              .write(reinterpret_cast<const char*>(jpg.data()),
                     static_cast<std::streamsize>(jpg.size()));
        }
      }
    }
  }
  std::string folder_train_args(const fs::path& data, const fs::path& out) const {
    return "train --dataset folder --data " + data.string() +
           " --model resnet20 --image-size 16 --epochs 1 --batch-size 4 --seed 1 --threads 1 "
           "--workers 1 --out " +
           out.string();
  }
};

int lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace

// The flags are checked before the data set is opened (here it does not exist), each named,
// with train's exit code and range (--image-size 0 is the default).
TEST_F(CliData, EvalRefusesBadFlagsBeforeOpeningTheData) {
  const std::string base = "eval --dataset fashion-mnist --data " + (root_ / "nowhere").string() +
                           " --weights " + (root_ / "none.safetensors").string() + " ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--batch-size 0", "--batch-size"},  {"--batch-size -5", "--batch-size"},
      {"--workers -1", "--workers"},       {"--threads 0", "--threads"},
      {"--image-size -1", "--image-size"}, {"--image-size 9000", "--image-size"}};
  for (const auto& [flags, name] : cases) {
    auto r = run_cli(base + flags);
    EXPECT_EQ(r.code, 2) << flags << ": " << r.out;
    EXPECT_EQ(r.out.rfind("tranq: error: " + name, 0), 0u) << flags << ": " << r.out;
    EXPECT_EQ(r.out.find("nowhere"), std::string::npos) << "the data was opened: " << r.out;
    EXPECT_EQ(lines(r.out), 1) << r.out;
    // train gives the same code for the same flag.
    auto t = run_cli(train_args(data_, root_ / "bad", flags));
    EXPECT_EQ(t.code, r.code) << flags << ": " << t.out;
    EXPECT_NE(t.out.find(name), std::string::npos) << t.out;
  }
  // With good flags the data set is what fails.
  auto r = run_cli(base + "--image-size 0 --workers 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("nowhere"), std::string::npos) << r.out;
}

// A batch size near INT64_MAX is one batch of everything (the batch count once overflowed to
// none): the same accuracy as smaller batches.
TEST_F(CliData, EvalTakesTheLargestBatchSize) {
  const std::string base = "eval --dataset fashion-mnist --data " + data_.string() + " --weights " +
                           weights_for(1, 10).string() + " --threads 1 ";
  auto small = run_cli(base + "--batch-size 16");
  ASSERT_EQ(small.code, 0) << small.out;
  auto r = run_cli(base + "--workers 2 --batch-size 9223372036854775807");
  EXPECT_EQ(r.code, 0) << r.out;
  const auto acc = [](const std::string& out) {
    const size_t p = out.rfind("test_acc=");
    return p == std::string::npos ? std::string("none") : out.substr(p);
  };
  EXPECT_EQ(acc(r.out), acc(small.out));
  EXPECT_NE(acc(small.out), "test_acc=0.00\n") << "an untrained model predicts some class right";
}

// The run's length in steps (epochs x steps per epoch) once overflowed silently.
TEST_F(CliData, TrainRefusesMoreStepsThanItCanCount) {
  const fs::path run = root_ / "run";
  auto r = run_cli(train_args(data_, run, "--epochs 9223372036854775807 --max-steps 1"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--epochs 9223372036854775807 of 6 steps each"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(run));
}

TEST_F(CliData, WeightsForAnotherDatasetBlameTheDataset) {
  write_folder(root_ / "folder", {"a", "b", "c"}, 2);
  const fs::path w = weights_for(1, 10);  // Fashion-MNIST's shape
  auto r = run_cli("eval --dataset folder --image-size 16 --data " + (root_ / "folder").string() +
                   " --weights " + w.string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(w.string() +
                       ": the weights are for 1-channel input and 10 classes; --dataset folder "
                       "has 3 and 3"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("--model"), std::string::npos) << r.out;
  r = run_cli("export --dataset cifar100 --weights " + w.string() + " --out " +
              (root_ / "x.safetensors").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("the weights are for 1-channel input and 10 classes; --dataset cifar100 "
                       "has 3 and 100"),
            std::string::npos)
      << r.out;
  // Only the classes differ.
  r = run_cli("eval --dataset fashion-mnist --data " + data_.string() + " --weights " +
              weights_for(1, 7).string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("1-channel input and 7 classes; --dataset fashion-mnist has 1 and 10"),
            std::string::npos)
      << r.out;
  // Another model for the right data set is still a --model question.
  r = run_cli("eval --model resnet18 --dataset fashion-mnist --data " + data_.string() +
              " --weights " + weights_for(1, 10).string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("is --model right?"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("the weights are for"), std::string::npos) << r.out;
}

TEST_F(CliData, ResumeRefusesOtherTrainingData) {
  const fs::path run = root_ / "run", other = root_ / "other";
  tranq::test::write_tiny_idx(other, 80, 40);
  ASSERT_EQ(run_cli(train_args(data_, run, "--max-steps 3")).code, 0);
  const std::string checkpoint = read_bytes(run / "checkpoint.safetensors");
  const std::string metrics = read_bytes(run / "metrics.jsonl");
  auto r = run_cli("train --data " + other.string() + " --out " + run.string() + " --resume");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("the training set in " + other.string() +
                       " holds 80 samples, the run was made with 96; --data must point to the "
                       "same data"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_EQ(read_bytes(run / "checkpoint.safetensors"), checkpoint);
  EXPECT_EQ(read_bytes(run / "metrics.jsonl"), metrics);
  // The right data resumes.
  r = run_cli("train --data " + data_.string() + " --out " + run.string() + " --resume");
  EXPECT_EQ(r.code, 0) << r.out;
}

// Image folders: the same number of images under other class names is other data too.
TEST_F(CliData, ResumeRefusesAFolderWithOtherClasses) {
  write_folder(root_ / "cats", {"cat", "dog"}, 4);
  write_folder(root_ / "cars", {"bus", "car"}, 4);
  const fs::path run = root_ / "run";
  auto r = run_cli(folder_train_args(root_ / "cats", run) + " --max-steps 1");
  ASSERT_EQ(r.code, 0) << r.out;
  r = run_cli("train --data " + (root_ / "cars").string() + " --out " + run.string() + " --resume");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("the training set in " + (root_ / "cars").string() +
                       " has other classes than the run was made with"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("--data must point to the same data"), std::string::npos) << r.out;
  r = run_cli("train --data " + (root_ / "cats").string() + " --out " + run.string() + " --resume");
  EXPECT_EQ(r.code, 0) << r.out;
}

// A checkpoint written before the data identity was saved resumes as before, bit for bit.
TEST_F(CliData, CheckpointWithoutTheDataIdentityStillResumesExactly) {
  const fs::path full = root_ / "full", part = root_ / "part";
  ASSERT_EQ(run_cli(train_args(data_, full)).code, 0);
  ASSERT_EQ(run_cli(train_args(data_, part, "--max-steps 3")).code, 0);
  const std::string path = (part / "checkpoint.safetensors").string();
  SafetensorsContent c = load_safetensors(path);
  nlohmann::json state = nlohmann::json::parse(c.metadata.at("state"));
  ASSERT_TRUE(state.at("extra").contains("data")) << state.dump();
  EXPECT_EQ(state["extra"]["data"]["train_samples"], 96);
  state["extra"].erase("data");
  c.metadata["state"] = state.dump();
  save_safetensors(path, c.tensors, c.metadata);
  auto r = run_cli("train --data " + data_.string() + " --out " + part.string() + " --resume");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_bytes(full / "model.safetensors"), read_bytes(part / "model.safetensors"));
  EXPECT_EQ(tranq::test::metrics_without_timings(full), tranq::test::metrics_without_timings(part));
}

TEST_F(CliData, TrainingClassWithoutJpegIsRefusedAndIgnoredFilesAreNoted) {
  const fs::path data = root_ / "folder";
  write_folder(data, {"a", "b"}, 3);
  fs::create_directories(data / "train" / "c");
  std::ofstream(data / "train" / "c" / "0.png") << "png";
  const fs::path run = root_ / "run";
  auto r = run_cli(folder_train_args(data, run));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("found no image for the class 'c' (1 of 3 classes); only .jpg and .jpeg "
                       "files are read (1 file ignored, e.g. '" +
                       (data / "train" / "c" / "0.png").string() + "')"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_FALSE(fs::exists(run));
  // With an image in c it trains, noting the file it does not read.
  fs::copy_file(data / "train" / "a" / "0.jpg", data / "train" / "c" / "1.jpg");
  r = run_cli(folder_train_args(data, run) + " --max-steps 1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(
      r.out.find("tranq: note: " + (data / "train").string() + ": 1 file ignored, e.g. '" +
                 (data / "train" / "c" / "0.png").string() + "' (only .jpg/.jpeg files are read)"),
      std::string::npos)
      << r.out;
}

TEST_F(CliData, ResumeNamesTheFlagsItIgnores) {
  const fs::path run = root_ / "run";
  ASSERT_EQ(run_cli(train_args(data_, run, "--max-steps 2")).code, 0);
  // The same flags again: nothing to say. Other epochs and lr: kept from the run, and named.
  auto same = run_cli(train_args(data_, run, "--max-steps 3 --resume"));
  ASSERT_EQ(same.code, 0) << same.out;
  EXPECT_EQ(same.out.find("ignored"), std::string::npos) << same.out;
  auto other = run_cli(train_args(data_, run, "--max-steps 4 --resume --epochs 5 --wbits 2"));
  ASSERT_EQ(other.code, 0) << other.out;
  EXPECT_NE(other.out.find("ignored: --epochs 5 (the run's: 2), --wbits 2 (the run's: 0)"),
            std::string::npos)
      << other.out;
  // --max-steps, --threads, --data, --out are per invocation: never named.
  EXPECT_EQ(other.out.find("--max-steps 4"), std::string::npos) << other.out;
  const std::string config = read_bytes(run / "config.json");
  EXPECT_NE(config.find("\"epochs\": 2,"), std::string::npos) << config;
}
