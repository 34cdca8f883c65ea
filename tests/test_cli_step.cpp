// What an optimizer step is made of. Gradient accumulation (--accum-steps): optimizer steps are
// what the run counts, the step's gradient is the mean over its batches, and resume stays exact
// between steps. Clipping (--clip-grad-norm): the step's gradient has at most that norm.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"
#include "core/safetensors.h"
#include "datasets/jpeg.h"

using namespace tranq;
using namespace tranq::test;
namespace fs = std::filesystem;

namespace {

class CliStep : public TempRunDir {
 protected:
  // 96 images in batches of 16: 6 batches an epoch.
  void SetUp() override { make_dirs(96, 40); }
  std::string args(const fs::path& out, const std::string& extra) const {
    return tiny_train_args(data_, "--epochs 2 --lr 0.05 --out " + out.string() + " " + extra);
  }
};

std::vector<int64_t> steps_of(const fs::path& run, const std::string& kind) {
  std::vector<int64_t> out;
  for (const nlohmann::json& j : metrics_without_timings(run))
    if (j.at("kind") == kind) out.push_back(j.at("step").get<int64_t>());
  return out;
}

std::vector<double> tensor_values(const fs::path& file, const std::string& name) {
  const SafetensorsContent c = load_safetensors(file.string());
  for (const auto& [n, t] : c.tensors)
    if (n == name) return t.to(DType::f64).to_vector<double>();
  ADD_FAILURE() << file << " holds no " << name;
  return {};
}

}  // namespace

TEST_F(CliStep, StepsScheduleAndLogsCountOptimizerSteps) {
  const fs::path out = root_ / "run";
  // 6 batches in steps of 4: a step of 4 batches, then one of the 2 left; 2 steps an epoch.
  auto r = run_cli(args(out, "--accum-steps 4"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(steps_of(out, "step"), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(steps_of(out, "epoch"), (std::vector<int64_t>{2, 4}));
  // The cosine schedule runs over the 4 optimizer steps: step 2's lr is 0.05 * (1 + cos(pi/4))/2.
  const std::vector<nlohmann::json> lines = metrics_without_timings(out);
  EXPECT_NEAR(lines.at(1).at("lr").get<double>(), 0.05 * (1 + std::cos(M_PI / 4)) / 2, 1e-12);
  EXPECT_EQ(run_cli(args(root_ / "bad", "--accum-steps 0")).code, 2);
}

TEST_F(CliStep, TheStepGradientIsTheMeanOverItsBatches) {
  // lr 1e-30 moves no weight by an ulp, so batches 0 and 1 see the same model in both runs; the
  // momentum buffer (no weight decay) then holds the gradient: g0 after step 1 of the plain
  // run, 0.5 * g0 + g1 after its step 2, and (g0 + g1) / 2 after the accumulating run's step.
  const std::string common =
      "--batch-size 8 --lr 1e-30 --weight-decay 0 --momentum 0.5 --nesterov false --max-steps ";
  const fs::path one = root_ / "one", two = root_ / "two", acc = root_ / "acc";
  ASSERT_EQ(run_cli(args(one, common + "1")).code, 0);
  ASSERT_EQ(run_cli(args(two, common + "2")).code, 0);
  ASSERT_EQ(run_cli(args(acc, common + "1 --accum-steps 2")).code, 0);
  const std::string name = "optim/conv1.weight.momentum_buffer";
  const std::vector<double> b1 = tensor_values(one / "checkpoint.safetensors", name);
  const std::vector<double> b2 = tensor_values(two / "checkpoint.safetensors", name);
  const std::vector<double> mean = tensor_values(acc / "checkpoint.safetensors", name);
  ASSERT_EQ(b1.size(), mean.size());
  ASSERT_EQ(b2.size(), mean.size());
  double scale = 0;
  for (double v : mean) scale = std::max(scale, std::abs(v));
  ASSERT_GT(scale, 0.0);
  for (size_t i = 0; i < mean.size(); ++i) {
    const double g0 = b1[i], g1 = b2[i] - 0.5 * b1[i];
    EXPECT_NEAR(mean[i], 0.5 * (g0 + g1), 1e-5 * scale) << i;
  }
}

TEST_F(CliStep, QatResumeBetweenStepsReproducesTheUninterruptedRun) {
  const fs::path fp = root_ / "fp", full = root_ / "full", split = root_ / "split";
  ASSERT_EQ(run_cli(args(fp, "--epochs 1")).code, 0);
  const std::string qat =
      "--accum-steps 4 --wbits 2 --optimizer sgdt --target-tr 0.01 "
      "--init-from " +
      (fp / "model.safetensors").string();
  ASSERT_EQ(run_cli(args(full, qat)).code, 0);
  ASSERT_EQ(run_cli(args(split, qat + " --max-steps 1")).code, 0);
  auto r = run_cli("train --data " + data_.string() + " --out " + split.string() + " --resume");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(read_bytes(full / "model.safetensors") == read_bytes(split / "model.safetensors"));
  EXPECT_EQ(metrics_without_timings(full), metrics_without_timings(split));
  EXPECT_EQ(steps_of(full, "step"), (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST_F(CliStep, ABatchWithNoReadableImageDoesNotShrinkTheStep) {
  // Two training images, one corrupt, in batches of 1: the accumulating step holds the good
  // batch and the empty one, and its gradient must be the good batch's alone, as after the
  // plain run's first step (lr 1e-30 and no weight decay: the momentum buffer is the gradient).
  const fs::path data = root_ / "folder";
  std::vector<uint8_t> px(32 * 32 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(37 * i % 251);
  const std::vector<uint8_t> good = data::encode_jpeg(px.data(), 32, 32, 3, 90);
  std::vector<uint8_t> broken = good;
  broken.resize(broken.size() / 3);
  auto write = [](const fs::path& p, const std::vector<uint8_t>& bytes) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  };
  write(data / "train" / "a" / "x.jpg", broken);
  write(data / "train" / "b" / "y.jpg", good);
  write(data / "val" / "a" / "x.jpg", good);
  write(data / "val" / "b" / "y.jpg", good);
  const std::string common = "train --dataset folder --data " + data.string() +
                             " --model resnet20 --image-size 32 --batch-size 1 --epochs 1 "
                             "--threads 1 --workers 1 --lr 1e-30 --weight-decay 0 --momentum 0.5 "
                             "--nesterov false --max-steps 1 --out ";
  const fs::path one = root_ / "one", acc = root_ / "acc";
  ASSERT_EQ(run_cli(common + one.string()).code, 0);
  ASSERT_EQ(run_cli(common + acc.string() + " --accum-steps 2").code, 0);
  const std::string name = "optim/conv1.weight.momentum_buffer";
  const std::vector<double> g = tensor_values(one / "checkpoint.safetensors", name);
  ASSERT_FALSE(g.empty());
  EXPECT_EQ(tensor_values(acc / "checkpoint.safetensors", name), g);
}

TEST_F(CliStep, ClipGradNormBoundsTheStepsGradient) {
  // As in the accumulation tests, the momentum buffers after one step are the gradient.
  const std::string common =
      "--batch-size 8 --lr 1e-30 --weight-decay 0 --momentum 0.5 --nesterov false --max-steps 1";
  const fs::path plain = root_ / "plain", loose = root_ / "loose", tight = root_ / "tight";
  ASSERT_EQ(run_cli(args(plain, common)).code, 0);
  ASSERT_EQ(run_cli(args(loose, common + " --clip-grad-norm 1e6")).code, 0);
  ASSERT_EQ(run_cli(args(tight, common + " --clip-grad-norm 0.01")).code, 0);
  EXPECT_TRUE(read_bytes(plain / "model.safetensors") == read_bytes(loose / "model.safetensors"))
      << "a limit above the norm changes nothing";
  auto norm_of_buffers = [](const fs::path& run) {
    double sq = 0;
    for (const auto& [n, t] : load_safetensors((run / "checkpoint.safetensors").string()).tensors)
      if (n.size() > 16 && n.compare(n.size() - 16, 16, ".momentum_buffer") == 0)
        for (double v : t.to(DType::f64).to_vector<double>()) sq += v * v;
    return std::sqrt(sq);
  };
  ASSERT_GT(norm_of_buffers(plain), 0.1);
  EXPECT_NEAR(norm_of_buffers(tight), 0.01, 1e-6);
  EXPECT_EQ(run_cli(args(root_ / "bad", "--clip-grad-norm -1")).code, 2);
}
