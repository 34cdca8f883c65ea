// The CLI end to end on a tiny generated data set in the real IDX format.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli_util.h"
#include "kernels/cuda_runtime.h"

namespace fs = std::filesystem;
using tranq::test::metrics_without_timings;
using tranq::test::read_bytes;
using tranq::test::run_cli;
using tranq::test::test_acc_of;

namespace {

class Cli : public tranq::test::TempRunDir {
 protected:
  void SetUp() override { make_dirs(96, 40); }
  std::string train_args(const fs::path& out, const std::string& extra = "") const {
    return "train --dataset fashion-mnist --data " + data_.string() +
           " --model resnet20 --epochs 2 --batch-size 16 --lr 0.05 --seed 3 --threads 1 --workers "
           "1 "
           "--log-every 2 --out " +
           out.string() + " " + extra;
  }
};

}  // namespace

TEST_F(Cli, HelpDocumentsEveryTrainFlag) {
  auto r = run_cli("train --help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag :
       {"--dataset", "--data", "--model", "--epochs", "--batch-size", "--optimizer", "--lr",
        "--lr-schedule", "--weight-decay", "--momentum", "--seed", "--threads", "--out",
        "--checkpoint-every", "--resume", "--accum-steps", "--clip-grad-norm", "--act-sign"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  EXPECT_EQ(run_cli("--help").code, 0);
}

TEST_F(Cli, TrainWritesRunFilesAndEvalAgrees) {
  fs::path out = root_ / "run";
  auto r = run_cli(train_args(out));
  ASSERT_EQ(r.code, 0) << r.out;
  const double acc = test_acc_of(r.out);
  ASSERT_GE(acc, 0) << r.out;
  EXPECT_GT(acc, 10.0) << "a learnable toy set should beat chance after 2 epochs\n" << r.out;
  for (const char* f :
       {"config.json", "checkpoint.safetensors", "model.safetensors", "metrics.jsonl"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  std::istringstream lines(read_bytes(out / "metrics.jsonl"));
  std::string line;
  int steps = 0, epochs = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    for (const char* k : {"step", "epoch", "loss", "lr", "train_acc", "images_per_s"})
      EXPECT_TRUE(j.contains(k)) << k << " missing in " << line;
    if (j["kind"] == "epoch") {
      ++epochs;
      EXPECT_TRUE(j.contains("test_acc"));
    } else {
      ++steps;
    }
  }
  EXPECT_EQ(epochs, 2);
  EXPECT_EQ(steps, 6);  // 6 batches per epoch, a line every 2 steps, 2 epochs
  auto ev = run_cli("eval --model resnet20 --dataset fashion-mnist --data " + data_.string() +
                    " --threads 1 --weights " + (out / "model.safetensors").string());
  ASSERT_EQ(ev.code, 0) << ev.out;
  EXPECT_DOUBLE_EQ(test_acc_of(ev.out), acc);
}

TEST_F(Cli, ResumeAfterStopReproducesTheUninterruptedRunBitForBit) {
  fs::path full = root_ / "full", split = root_ / "split";
  ASSERT_EQ(run_cli(train_args(full)).code, 0);
  // Stopped at step 3, inside the log window of steps 3-4.
  auto first = run_cli(train_args(split, "--checkpoint-every 4 --max-steps 3"));
  ASSERT_EQ(first.code, 0) << first.out;
  auto second = run_cli("train --data " + data_.string() + " --out " + split.string() +
                        " --threads 1 --resume");
  ASSERT_EQ(second.code, 0) << second.out;
  EXPECT_NE(second.out.find("resuming"), std::string::npos) << second.out;
  EXPECT_EQ(read_bytes(full / "model.safetensors"), read_bytes(split / "model.safetensors"));
  EXPECT_EQ(read_bytes(full / "checkpoint.safetensors"),
            read_bytes(split / "checkpoint.safetensors"));
  // The step-4 line averages steps 3 and 4 in both runs.
  const auto full_lines = metrics_without_timings(full);
  EXPECT_EQ(metrics_without_timings(split), full_lines);
  EXPECT_EQ(full_lines.size(), 8u) << "6 step lines and 2 epoch lines";
}

TEST_F(Cli, EpochEndLogsTheStepsSinceTheLastLineWhenLogEveryDoesNotDivideIt) {
  // 6 steps per epoch (96 images of 16), lines every 4 steps: steps 5-6 and 9-12 would go
  // unlogged without the epoch end's line (a window does not span epochs).
  fs::path every4 = root_ / "every4", every2 = root_ / "every2";
  ASSERT_EQ(run_cli(train_args(every4, "--log-every 4")).code, 0);
  const auto lines = metrics_without_timings(every4);
  std::vector<std::pair<std::string, int64_t>> seen;
  for (const auto& j : lines) seen.emplace_back(j["kind"], j["step"].get<int64_t>());
  const std::vector<std::pair<std::string, int64_t>> want = {
      {"step", 4}, {"step", 6}, {"epoch", 6}, {"step", 8}, {"step", 12}, {"epoch", 12}};
  EXPECT_EQ(seen, want);
  ASSERT_EQ(lines.size(), want.size());
  EXPECT_EQ(lines[1]["epoch"], 1);
  // Steps 5-6 are the window of the step-6 line of a run logged every 2 steps: same line.
  ASSERT_EQ(run_cli(train_args(every2)).code, 0);
  const auto every2_lines = metrics_without_timings(every2);
  ASSERT_GE(every2_lines.size(), 3u);
  ASSERT_EQ(every2_lines[2]["step"], 6);
  EXPECT_EQ(lines[1], every2_lines[2]);
}

TEST_F(Cli, MovedRunResumesWhereItIsNow) {
  fs::path full = root_ / "full", made = root_ / "made", moved = root_ / "moved";
  ASSERT_EQ(run_cli(train_args(full)).code, 0);
  ASSERT_EQ(run_cli(train_args(made, "--max-steps 3")).code, 0);
  fs::rename(made, moved);
  auto r = run_cli("train --data " + data_.string() + " --out " + moved.string() +
                   " --threads 1 --resume");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("resuming " + moved.string()), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(made)) << "the resumed run went back to where it was made";
  EXPECT_EQ(read_bytes(full / "model.safetensors"), read_bytes(moved / "model.safetensors"));
}

TEST_F(Cli, FreshRunRefusesADirectoryThatHoldsARun) {
  fs::path run = root_ / "run";
  ASSERT_EQ(run_cli(train_args(run, "--max-steps 3")).code, 0);
  const std::string checkpoint = read_bytes(run / "checkpoint.safetensors");
  const std::string config = read_bytes(run / "config.json");
  auto r = run_cli(train_args(run, "--seed 7"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--resume"), std::string::npos) << r.out;
  EXPECT_EQ(read_bytes(run / "checkpoint.safetensors"), checkpoint);
  EXPECT_EQ(read_bytes(run / "config.json"), config);
}

TEST_F(Cli, OutOfRangeFlagsAreRefusedBeforeAnythingIsWritten) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--wbits -1", "--wbits"},
      {"--wbits 9", "--wbits"},
      {"--abits 4", "--wbits"},
      {"--momentum 1.5", "--momentum"},
      {"--log-every -1", "--log-every"},
      {"--max-steps -2", "--max-steps"},
      {"--label-smoothing 2", "--label-smoothing"},
      {"--checkpoint-every -1", "--checkpoint-every"},
      {"--weight-decay -0.1", "--weight-decay"},
      {"--wbits 2 --optimizer sgdt --target-tr -1", "--target-tr"},
      {"--workers -1", "--workers"},
      {"--threads 0", "--threads"}};
  int i = 0;
  for (const auto& [flags, name] : cases) {
    const fs::path out = root_ / ("bad" + std::to_string(i++));
    auto r = run_cli(train_args(out, flags));
    EXPECT_EQ(r.code, 2) << flags << ": " << r.out;
    EXPECT_NE(r.out.find(name), std::string::npos) << flags << ": " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_FALSE(fs::exists(out)) << flags;
  }
  auto b = run_cli(
      "bench --model resnet20 --input 3x8x8 --batch-size 2 --iters 1 --threads 1 "
      "--warmup -1");
  EXPECT_EQ(b.code, 2) << b.out;
  EXPECT_NE(b.out.find("--warmup"), std::string::npos) << b.out;
  // bench checks flags as train does: activation bits alone would time a full-precision run.
  auto a = run_cli("bench --model resnet20 --input 3x8x8 --batch-size 2 --iters 1 --abits 4");
  EXPECT_EQ(a.code, 2) << a.out;
  EXPECT_NE(a.out.find("give --wbits"), std::string::npos) << a.out;
}

TEST_F(Cli, BenchReportsTimingsAndTheLossItChecked) {
  auto r = run_cli(
      "bench --model resnet20 --input 3x8x8 --batch-size 4 --iters 3 --warmup 1 --threads 1 "
      "--wbits 2 --optimizer sgdt");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(j.at("wbits"), 2);
  EXPECT_EQ(j.at("abits"), 2);
  EXPECT_EQ(j.at("iters"), 3);
  EXPECT_GT(j.at("step_ms").get<double>(), 0.0);
  EXPECT_LE(j.at("step_ms_min").get<double>(), j.at("step_ms").get<double>());
  EXPECT_GT(j.at("images_per_s").get<double>(), 0.0);
  // Ten classes at initialisation: about ln 10; four steps on one batch then lower it.
  const double first = j.at("loss_first"), last = j.at("loss_last");
  EXPECT_GT(first, 1.0);
  EXPECT_LT(first, 5.0);
  EXPECT_LT(last, first);
}

TEST_F(Cli, ResumeAfterKill9ReproducesTheUninterruptedRun) {
  fs::path full = root_ / "full", killed = root_ / "killed";
  ASSERT_EQ(run_cli(train_args(full)).code, 0);
  const std::string cmd =
      std::string(TRANQ_CLI_PATH) + " " + train_args(killed, "--checkpoint-every 1");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>&1").c_str(), nullptr);
    _exit(127);
  }
  // Kill it some time after its first checkpoint, mid-run.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(killed / "checkpoint.safetensors") &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  auto resumed = run_cli("train --data " + data_.string() + " --out " + killed.string() +
                         " --threads 1 --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_EQ(read_bytes(full / "model.safetensors"), read_bytes(killed / "model.safetensors"));
  // metrics.jsonl holds each step line once despite the kill.
  std::istringstream lines(read_bytes(killed / "metrics.jsonl"));
  std::string line;
  std::vector<int> steps;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] == "step") steps.push_back(j["step"].get<int>());
  }
  EXPECT_EQ(steps, (std::vector<int>{2, 4, 6, 8, 10, 12}));
}

TEST_F(Cli, ResumeKeepsTheRunsThreadCount) {
  fs::path one = root_ / "one", two = root_ / "two", split = root_ / "split";
  ASSERT_EQ(run_cli(train_args(one)).code, 0);
  ASSERT_EQ(run_cli(train_args(two, "--threads 2")).code, 0);
  // The check below means something only where the thread count changes the bits.
  ASSERT_FALSE(read_bytes(one / "model.safetensors") == read_bytes(two / "model.safetensors"));
  ASSERT_EQ(run_cli(train_args(split, "--max-steps 3")).code, 0);
  // No --threads: the run's own count (1), not the CLI default (2).
  auto r = run_cli("train --data " + data_.string() + " --out " + split.string() + " --resume");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(read_bytes(one / "model.safetensors") == read_bytes(split / "model.safetensors"));
}

TEST_F(Cli, ResumeRestoresTheDropoutStreams) {
  // mobilenet_v2 is the model with a Dropout: its masks must continue, not restart, on resume.
  const std::string args = " --model mobilenet_v2 --epochs 1 --batch-size 32";
  fs::path full = root_ / "full", split = root_ / "split";
  ASSERT_EQ(run_cli(train_args(full, args)).code, 0);
  ASSERT_EQ(run_cli(train_args(split, args + " --max-steps 1")).code, 0);
  auto r = run_cli("train --data " + data_.string() + " --out " + split.string() + " --resume");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(read_bytes(full / "model.safetensors") == read_bytes(split / "model.safetensors"));
}

TEST_F(Cli, ResumeRestartsARunKilledBetweenItsFirstWeightsAndCheckpoint) {
  fs::path full = root_ / "full", cut = root_ / "cut";
  ASSERT_EQ(run_cli(train_args(full)).code, 0);
  // 96 images in batches of 16: the first epoch ends at step 6 with weights, then a checkpoint.
  ASSERT_EQ(run_cli(train_args(cut, "--max-steps 6")).code, 0);
  ASSERT_TRUE(fs::exists(cut / "model.safetensors"));
  fs::remove(cut / "checkpoint.safetensors");  // as if killed between the two writes
  auto r = run_cli("train --data " + data_.string() + " --out " + cut.string() + " --resume");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(read_bytes(full / "model.safetensors") == read_bytes(cut / "model.safetensors"));
  // Without --resume the same directory is still refused.
  fs::remove(cut / "checkpoint.safetensors");
  auto fresh = run_cli(train_args(cut));
  EXPECT_EQ(fresh.code, 2) << fresh.out;
  EXPECT_NE(fresh.out.find("--resume"), std::string::npos) << fresh.out;
}

TEST_F(Cli, BadInputGivesOneLineErrorAndExitCode2) {
  auto r = run_cli("train --bogus-flag 1");
  EXPECT_EQ(r.code, 2) << r.out;
  r = run_cli(train_args(root_ / "r0", "--bogus-flag 1"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_EQ(r.out.rfind("tranq: error: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("--bogus-flag"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  r = run_cli(train_args(root_ / "r1", "--model resnet999"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("resnet999"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(root_ / "r1" / "config.json")) << "nothing written on bad input";

  fs::path missing = root_ / "nodata";
  r = run_cli("train --data " + missing.string() + " --out " + (root_ / "r2").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("train-images-idx3-ubyte"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(root_ / "r2"));

  // A truncated checkpoint is reported by name on resume.
  fs::path run = root_ / "r3";
  ASSERT_EQ(run_cli(train_args(run, "--max-steps 2 --checkpoint-every 2")).code, 0);
  std::string ck = read_bytes(run / "checkpoint.safetensors");
  std::ofstream(run / "checkpoint.safetensors", std::ios::binary | std::ios::trunc)
      .write(ck.data(), static_cast<std::streamsize>(ck.size() / 2));
  r = run_cli("train --data " + data_.string() + " --out " + run.string() + " --resume");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("checkpoint.safetensors"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;

  // Weights of another model: a shape mismatch names the file.
  ASSERT_EQ(run_cli(train_args(root_ / "r4", "--max-steps 1")).code, 0);
  r = run_cli("eval --model resnet18 --dataset fashion-mnist --data " + data_.string() +
              " --weights " + (root_ / "r4" / "model.safetensors").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("model.safetensors"), std::string::npos) << r.out;
}

// Without a GPU (or without the CUDA backend) --device cuda is a user error, not a crash.
TEST_F(Cli, DeviceCudaWithoutGpuSaysNoCudaDevice) {
  std::string why;
  if (tranq::cuda::device_count(&why) > 0) GTEST_SKIP() << "a CUDA device is present";
  for (const std::string& cmd : std::vector<std::string>{
           std::string("bench --model resnet20 --iters 1 --warmup 0 --device cuda"),
           "train --dataset fashion-mnist --data " + data_.string() +
               " --model resnet20 --epochs 1 "
               "--device cuda:1 --out " +
               (root_ / "run").string(),
           "eval --dataset fashion-mnist --data " + data_.string() +
               " --weights nowhere.safetensors --device cuda",
           std::string("export --weights nowhere.safetensors --out x.safetensors --device cuda")}) {
    const auto r = tranq::test::run_cli(cmd);
    EXPECT_EQ(r.code, 2) << cmd << "\n" << r.out;
    EXPECT_NE(r.out.find("tranq: error: no CUDA device"), std::string::npos) << r.out;
    EXPECT_FALSE(std::filesystem::exists(root_ / "run" / "config.json"));
  }
  const auto r = tranq::test::run_cli("bench --model resnet20 --iters 1 --warmup 0 --device tpu");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--device must be cpu, cuda or cuda:N"), std::string::npos) << r.out;

  // A GPU run resumed here without --device: the error says where the device came from and
  // how to continue on the CPU.
  const fs::path run = root_ / "gpu_run";
  ASSERT_EQ(run_cli(train_args(run, "--max-steps 1")).code, 0);
  std::string config = read_bytes(run / "config.json");
  const auto at = config.find("\"device\": \"cpu\"");
  ASSERT_NE(at, std::string::npos) << config;
  config.replace(at, 15, "\"device\": \"cuda\"");
  std::ofstream(run / "config.json") << config;
  const auto resumed =
      run_cli("train --data " + data_.string() + " --out " + run.string() + " --resume");
  EXPECT_EQ(resumed.code, 2) << resumed.out;
  EXPECT_NE(resumed.out.find("was made on cuda; --device cpu continues it"), std::string::npos)
      << resumed.out;
  EXPECT_EQ(run_cli("train --data " + data_.string() + " --out " + run.string() +
                    " --resume --device cpu")
                .code,
            0);
}
