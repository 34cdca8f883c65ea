// --precision fp32|bf16 end to end on the CPU: a bf16 run trains, saves the choice in
// config.json so that --resume keeps it, and differs from the fp32 run; eval and bench take
// it; bad values stop with one line and exit code 2 before anything is written.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_util.h"

namespace fs = std::filesystem;
using tranq::test::read_bytes;
using tranq::test::run_cli;

namespace {

class CliPrecision : public tranq::test::TempRunDir {
 protected:
  void SetUp() override { make_dirs(32, 16); }
  // One epoch of 4 steps.
  std::string train_args(const fs::path& out, const std::string& extra) const {
    return "train --dataset fashion-mnist --data " + data_.string() +
           " --model resnet20 --epochs 1 --batch-size 8 --lr 0.05 --seed 5 --threads 1 "
           "--workers 0 --log-every 1 --out " +
           out.string() + " " + extra;
  }
};

nlohmann::json config_of(const fs::path& run) {
  return nlohmann::json::parse(read_bytes(run / "config.json"));
}

}  // namespace

TEST_F(CliPrecision, Bf16TrainsAndResumeKeepsIt) {
  // Two steps in bf16, stopped; the config says bf16.
  const fs::path split = root_ / "split", full = root_ / "full", fp = root_ / "fp32";
  auto r = run_cli(train_args(split, "--precision bf16 --max-steps 2 --checkpoint-every 2"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(config_of(split).at("precision"), "bf16");
  ASSERT_TRUE(fs::exists(split / "checkpoint.safetensors"));

  // Resumed with --precision fp32, it still trains in bf16: it ends bit for bit where the
  // uninterrupted bf16 run does.
  r = run_cli("train --data " + data_.string() + " --out " + split.string() +
              " --threads 1 --precision fp32 --resume");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(config_of(split).at("precision"), "bf16");
  r = run_cli(train_args(full, "--precision bf16"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_bytes(full / "model.safetensors"), read_bytes(split / "model.safetensors"));

  // The fp32 run (the default) differs: only the products' precision changed.
  r = run_cli(train_args(fp, ""));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(config_of(fp).at("precision"), "fp32");
  EXPECT_NE(read_bytes(full / "model.safetensors"), read_bytes(fp / "model.safetensors"));
}

TEST_F(CliPrecision, BadValueIsExitCode2) {
  auto r = run_cli(train_args(root_ / "bad", "--precision fp16"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("tranq: error: --precision"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fp32, bf16"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_FALSE(fs::exists(root_ / "bad" / "config.json")) << "nothing written on bad input";

  r = run_cli("bench --model resnet20 --iters 1 --warmup 0 --precision half");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--precision"), std::string::npos) << r.out;
  r = run_cli("eval --dataset fashion-mnist --data " + data_.string() +
              " --weights nowhere.safetensors --precision BF16");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--precision"), std::string::npos) << r.out;
}

TEST_F(CliPrecision, EvalAndBenchTakeBf16) {
  const fs::path run = root_ / "run";
  ASSERT_EQ(run_cli(train_args(run, "")).code, 0);
  auto r = run_cli("eval --model resnet20 --dataset fashion-mnist --data " + data_.string() +
                   " --threads 1 --weights " + (run / "model.safetensors").string() +
                   " --precision bf16");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("test_acc="), std::string::npos) << r.out;
  r = run_cli(
      "bench --model resnet20 --input 1x12x12 --batch-size 2 --iters 1 --warmup 0 "
      "--threads 1 --precision bf16");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("\"precision\":\"bf16\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"tf32\":false"), std::string::npos) << r.out;
  // --tf32 changes nothing on the CPU: refused there rather than reported as if it did.
  r = run_cli(
      "bench --model resnet20 --input 1x12x12 --batch-size 2 --iters 1 --warmup 0 "
      "--threads 1 --tf32");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--tf32 applies to CUDA only"), std::string::npos) << r.out;
}
