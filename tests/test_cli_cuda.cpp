// The trainer on a GPU through the CLI, on a tiny generated data set: a W2A2 SGDT run with
// --device cuda tracks the same run on the CPU, evaluates as eval does, and resumes bit for bit
// (the loader's pinned batches, the copy stream, the device-side step statistics and TRS state,
// checkpoints). Skips without a CUDA device or without cuDNN.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "cli_util.h"
#include "kernels/cuda_runtime.h"

namespace fs = std::filesystem;
using tranq::test::read_bytes;
using tranq::test::run_cli;
using tranq::test::test_acc_of;

namespace {

class CliCuda : public tranq::test::TempRunDir {
 protected:
  void SetUp() override {
    std::string why;
    if (tranq::cuda::device_count(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
    if (!tranq::cuda::has_cudnn())
      GTEST_SKIP() << "no cuDNN in this CUDA build: the model's convolutions cannot run";
    make_dirs(64, 32);
    auto fp = run_cli(common("--epochs 1 --lr 0.05 --out " + (root_ / "fp").string()));
    ASSERT_EQ(fp.code, 0) << fp.out;
  }
  std::string common(const std::string& extra) const {
    return tranq::test::tiny_train_args(data_, extra);
  }
  std::string qat(const fs::path& out, const std::string& extra) const {
    return tranq::test::tiny_qat_args(data_, root_ / "fp" / "model.safetensors", out, extra);
  }
};

std::vector<nlohmann::json> step_lines(const fs::path& run) {
  std::vector<nlohmann::json> out;
  std::istringstream lines(read_bytes(run / "metrics.jsonl"));
  std::string line;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] == "step") out.push_back(j);
  }
  return out;
}

}  // namespace

TEST_F(CliCuda, QatTrsRunTracksTheCpuEvaluatesAndResumesExactly) {
  auto cpu = run_cli(qat(root_ / "cpu", "--device cpu"));
  ASSERT_EQ(cpu.code, 0) << cpu.out;
  auto gpu = run_cli(qat(root_ / "gpu", "--device cuda"));
  ASSERT_EQ(gpu.code, 0) << gpu.out;

  // Same steps logged; the first step's loss comes from the same weights and batch, so only
  // the summation order of the convolutions (and a rare activation code at a tie) differs.
  const auto c = step_lines(root_ / "cpu"), g = step_lines(root_ / "gpu");
  ASSERT_EQ(c.size(), 8u);
  ASSERT_EQ(g.size(), c.size());
  const double lc = c[0]["loss"].get<double>(), lg = g[0]["loss"].get<double>();
  EXPECT_NEAR(lg, lc, 1e-2 * std::fabs(lc)) << "first step's loss, GPU against CPU";
  for (const auto& j : g) {
    EXPECT_TRUE(std::isfinite(j["loss"].get<double>())) << j.dump();
    for (const char* k : {"tr", "tr_ema", "talr", "layers"}) EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_GT(j["talr"].get<double>(), 0.0) << j.dump();
  }

  // eval on the GPU repeats the trainer's last evaluation exactly; on the CPU within four of
  // the 32 test images (a fake-quantized activation at a tie may round the other way).
  const double acc = test_acc_of(gpu.out);
  ASSERT_GE(acc, 0) << gpu.out;
  const std::string weights = (root_ / "gpu" / "model.safetensors").string();
  const std::string ev = "eval --model resnet20 --dataset fashion-mnist --data " + data_.string() +
                         " --threads 1 --weights " + weights;
  auto eg = run_cli(ev + " --device cuda");
  ASSERT_EQ(eg.code, 0) << eg.out;
  EXPECT_DOUBLE_EQ(test_acc_of(eg.out), acc) << eg.out;
  auto ec = run_cli(ev + " --device cpu");
  ASSERT_EQ(ec.code, 0) << ec.out;
  EXPECT_NEAR(test_acc_of(ec.out), acc, 100.0 * 4 / 32 + 1e-9) << ec.out;

  // Stopped after 3 steps and resumed on the GPU: the uninterrupted run's checkpoint, bit for
  // bit (deterministic kernels, cuDNN algorithms chosen by the same rules in both processes).
  auto first = run_cli(qat(root_ / "split", "--device cuda --max-steps 3 --checkpoint-every 3"));
  ASSERT_EQ(first.code, 0) << first.out;
  auto second =
      run_cli("train --out " + (root_ / "split").string() + " --threads 1 --device cuda --resume");
  ASSERT_EQ(second.code, 0) << second.out;
  EXPECT_EQ(read_bytes(root_ / "gpu" / "checkpoint.safetensors"),
            read_bytes(root_ / "split" / "checkpoint.safetensors"));
}

TEST_F(CliCuda, ExportOnTheGpuWritesTheCpusCodes) {
  auto run = run_cli(qat(root_ / "q", "--device cpu --max-steps 3"));
  ASSERT_EQ(run.code, 0) << run.out;
  const std::string args = "export --model resnet20 --dataset fashion-mnist --weights " +
                           (root_ / "q" / "model.safetensors").string() + " --out ";
  ASSERT_EQ(run_cli(args + (root_ / "cpu.safetensors").string() + " --device cpu").code, 0);
  auto gpu = run_cli(args + (root_ / "gpu.safetensors").string() + " --device cuda");
  ASSERT_EQ(gpu.code, 0) << gpu.out;
  EXPECT_TRUE(read_bytes(root_ / "cpu.safetensors") == read_bytes(root_ / "gpu.safetensors"));
}

// The step options on the GPU: accumulation, clipping (its norm read once a step) and signed
// input quantizers track the CPU run and resume exactly.
TEST_F(CliCuda, AccumulationClippingAndSignedInputsTrackTheCpu) {
  const std::string opts = " --accum-steps 2 --clip-grad-norm 1.0 --act-sign auto";
  auto cpu = run_cli(qat(root_ / "cpu", "--device cpu" + opts));
  ASSERT_EQ(cpu.code, 0) << cpu.out;
  auto gpu = run_cli(qat(root_ / "gpu", "--device cuda" + opts));
  ASSERT_EQ(gpu.code, 0) << gpu.out;
  // 64 images in batches of 16, 2 batches a step, 2 epochs: 4 steps, one line each.
  const auto c = step_lines(root_ / "cpu"), g = step_lines(root_ / "gpu");
  ASSERT_EQ(c.size(), 4u);
  ASSERT_EQ(g.size(), c.size());
  const double lc = c[0]["loss"].get<double>(), lg = g[0]["loss"].get<double>();
  EXPECT_NEAR(lg, lc, 1e-2 * std::fabs(lc)) << "first step's loss, GPU against CPU";
  for (const auto& j : g) EXPECT_TRUE(std::isfinite(j["loss"].get<double>())) << j.dump();

  auto first = run_cli(qat(root_ / "split", "--device cuda --max-steps 1" + opts));
  ASSERT_EQ(first.code, 0) << first.out;
  auto second = run_cli("train --out " + (root_ / "split").string() + " --resume");
  ASSERT_EQ(second.code, 0) << second.out;
  EXPECT_TRUE(read_bytes(root_ / "gpu" / "model.safetensors") ==
              read_bytes(root_ / "split" / "model.safetensors"));
}
