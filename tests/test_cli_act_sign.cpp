// --act-sign auto through the CLI: MobileNetV2's linear-bottleneck outputs get signed input
// quantizers, and the choice survives resume, export and eval.
#include <gtest/gtest.h>

#include <string>

#include "cli_util.h"
#include "core/safetensors.h"

using namespace tranq;
using namespace tranq::test;
namespace fs = std::filesystem;

namespace {

class CliActSign : public TempRunDir {
 protected:
  void SetUp() override { make_dirs(96, 40); }
};

// {signed, all} over the act_signed buffers of a weights file.
std::pair<int, int> signed_inputs(const fs::path& file) {
  int on = 0, all = 0;
  for (const auto& [n, t] : load_safetensors(file.string()).tensors) {
    if (n.size() < 11 || n.compare(n.size() - 11, 11, ".act_signed") != 0) continue;
    ++all;
    on += t.to_vector<uint8_t>().at(0) != 0;
  }
  return {on, all};
}

}  // namespace

TEST_F(CliActSign, SignedInputsSurviveResumeExportAndEval) {
  const std::string model = " --model mobilenet_v2 --epochs 1 --batch-size 32";
  const fs::path fp = root_ / "fp", full = root_ / "full", split = root_ / "split";
  ASSERT_EQ(run_cli(tiny_train_args(data_, model + " --out " + fp.string())).code, 0);
  const std::string qat = model + " --wbits 4 --optimizer sgdt --lr 0.01 --act-sign auto" +
                          " --init-from " + (fp / "model.safetensors").string() + " --out ";
  ASSERT_EQ(run_cli(tiny_train_args(data_, qat + full.string())).code, 0);
  const auto [on, all] = signed_inputs(full / "model.safetensors");
  // The inputs of features.2..18 follow a projection without ReLU; the rest follow a ReLU6.
  EXPECT_GT(on, 0);
  EXPECT_LT(on, all);

  ASSERT_EQ(run_cli(tiny_train_args(data_, qat + split.string() + " --max-steps 1")).code, 0);
  auto r = run_cli("train --data " + data_.string() + " --out " + split.string() + " --resume");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(read_bytes(full / "model.safetensors") == read_bytes(split / "model.safetensors"));

  const fs::path codes = root_ / "int.safetensors";
  const std::string flags = " --model mobilenet_v2 --dataset fashion-mnist";
  auto ex = run_cli("export" + flags + " --weights " + (full / "model.safetensors").string() +
                    " --out " + codes.string());
  ASSERT_EQ(ex.code, 0) << ex.out;
  EXPECT_EQ(signed_inputs(codes), std::make_pair(on, all));
  const std::string eval = "eval" + flags + " --threads 1 --data " + data_.string();
  auto a = run_cli(eval + " --weights " + (full / "model.safetensors").string());
  auto b = run_cli(eval + " --weights " + codes.string());
  ASSERT_EQ(a.code, 0) << a.out;
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_GE(test_acc_of(a.out), 0);
  EXPECT_EQ(test_acc_of(a.out), test_acc_of(b.out));
}
