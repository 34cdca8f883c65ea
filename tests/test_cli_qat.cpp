// QAT through the CLI on a tiny generated data set: TRS state resumes exactly, metrics carry
// per-layer transition statistics, and the exported integer model predicts like the
// fake-quant model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_util.h"
#include "core/safetensors.h"

namespace fs = std::filesystem;
using tranq::test::read_bytes;
using tranq::test::run_cli;

namespace {

class CliQat : public tranq::test::TempRunDir {
 protected:
  void SetUp() override {
    make_dirs(64, 32);
    auto fp = run_cli(common("--epochs 1 --lr 0.05 --out " + (root_ / "fp").string()));
    ASSERT_EQ(fp.code, 0) << fp.out;
  }
  std::string common(const std::string& extra) const {
    return tranq::test::tiny_train_args(data_, extra);
  }
  std::string qat(const fs::path& out, const std::string& extra = "") const {
    return tranq::test::tiny_qat_args(data_, root_ / "fp" / "model.safetensors", out, extra);
  }
};

double acc_of(const std::string& out) {
  auto p = out.rfind("test_acc=");
  return p == std::string::npos ? -1 : std::stod(out.substr(p + 9));
}

}  // namespace

TEST_F(CliQat, MetricsCarryPerLayerTransitionStatistics) {
  auto r = run_cli(qat(root_ / "q"));
  ASSERT_EQ(r.code, 0) << r.out;
  std::istringstream lines(read_bytes(root_ / "q" / "metrics.jsonl"));
  std::string line;
  int step_lines = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] != "step") continue;
    ++step_lines;
    for (const char* k : {"tr", "tr_ema", "target_tr", "talr", "osc", "near", "layers"})
      ASSERT_TRUE(j.contains(k)) << k << " missing: " << line;
    ASSERT_TRUE(j["layers"].contains("layer1.0.conv1")) << line;
    EXPECT_FALSE(j["layers"].contains("conv1")) << "the first conv stays full precision";
    EXPECT_FALSE(j["layers"].contains("fc")) << "the last linear stays full precision";
    for (auto& [name, l] : j["layers"].items()) {
      for (const char* k : {"tr", "tr_ema", "target_tr", "talr", "osc", "near"})
        ASSERT_TRUE(l.contains(k)) << name << "." << k;
      EXPECT_GE(l["tr"].get<double>(), 0.0);
      EXPECT_LE(l["tr"].get<double>(), 1.0);
      EXPECT_GT(l["talr"].get<double>(), 0.0);
    }
    // Cosine target from 0.01 over 8 steps.
    EXPECT_LE(j["target_tr"].get<double>(), 0.01 + 1e-12);
  }
  EXPECT_EQ(step_lines, 8);
}

TEST_F(CliQat, ResumeWithTrsStateReproducesTheUninterruptedRun) {
  // Log lines every 2 steps, stopped at step 3: the transition window of steps 3-4 is split.
  ASSERT_EQ(run_cli(qat(root_ / "full", "--log-every 2")).code, 0);
  auto first = run_cli(qat(root_ / "split", "--log-every 2 --max-steps 3 --checkpoint-every 3"));
  ASSERT_EQ(first.code, 0) << first.out;
  // The checkpoint holds the weights: --init-from is not read again.
  const fs::path init = root_ / "fp" / "model.safetensors", away = root_ / "fp.away";
  fs::rename(init, away);
  auto second = run_cli("train --out " + (root_ / "split").string() + " --threads 1 --resume");
  fs::rename(away, init);
  ASSERT_EQ(second.code, 0) << second.out;
  EXPECT_EQ(read_bytes(root_ / "full" / "checkpoint.safetensors"),
            read_bytes(root_ / "split" / "checkpoint.safetensors"));
  auto step_lines = [](const fs::path& run) {
    std::vector<nlohmann::json> out;
    for (auto& j : tranq::test::metrics_without_timings(run))
      if (j["kind"] == "step") out.push_back(j);
    return out;
  };
  const auto full_lines = step_lines(root_ / "full");
  ASSERT_EQ(full_lines.size(), 4u) << "steps 2, 4, 6, 8";
  EXPECT_EQ(step_lines(root_ / "split"), full_lines);
  auto ck = tranq::load_safetensors((root_ / "full" / "checkpoint.safetensors").string());
  bool has_trs = false, has_codes = false;
  for (auto& [n, t] : ck.tensors) {
    has_trs |= n == "extra/trs.U";
    has_codes |= n == "model/layer1.0.conv1.weight_codes";
  }
  EXPECT_TRUE(has_trs) << "the TALR controller state is checkpointed";
  EXPECT_TRUE(has_codes) << "the transition codes are checkpointed";
}

TEST_F(CliQat, EpochEndLogsTheStepsSinceTheLastLineAndResumesThem) {
  // 4 steps per epoch, lines every 3 steps: steps 4 and 7-8 are logged at their epoch's end.
  auto kinds_and_steps = [](const std::vector<nlohmann::json>& lines) {
    std::vector<std::pair<std::string, int64_t>> out;
    for (const auto& j : lines) out.emplace_back(j["kind"], j["step"].get<int64_t>());
    return out;
  };
  const auto lines_of = tranq::test::metrics_without_timings;
  ASSERT_EQ(run_cli(qat(root_ / "full", "--log-every 3")).code, 0);
  const auto full = lines_of(root_ / "full");
  const std::vector<std::pair<std::string, int64_t>> want = {
      {"step", 3}, {"step", 4}, {"epoch", 4}, {"step", 6}, {"step", 8}, {"epoch", 8}};
  ASSERT_EQ(kinds_and_steps(full), want);
  for (size_t i : {1, 4})
    for (const char* k : {"tr", "tr_ema", "target_tr", "talr", "osc", "near", "layers"})
      EXPECT_TRUE(full[i].contains(k)) << k << " missing at step " << full[i]["step"];
  // The step-4 line covers step 4 alone, as a run logged every step does.
  ASSERT_EQ(run_cli(qat(root_ / "each")).code, 0);
  const auto each = lines_of(root_ / "each");
  ASSERT_GE(each.size(), 4u);
  ASSERT_EQ(each[3]["step"], 4);
  EXPECT_EQ(full[1], each[3]);
  // Stopped at step 7, inside the window the epoch's end closes: the resumed run's line at
  // step 8 still covers steps 7 and 8.
  auto first = run_cli(qat(root_ / "split", "--log-every 3 --max-steps 7"));
  ASSERT_EQ(first.code, 0) << first.out;
  auto second = run_cli("train --out " + (root_ / "split").string() + " --threads 1 --resume");
  ASSERT_EQ(second.code, 0) << second.out;
  EXPECT_EQ(lines_of(root_ / "split"), full);
}

TEST_F(CliQat, ExportedIntegerModelPredictsLikeTheFakeQuantModel) {
  fs::path run = root_ / "q";
  auto r = run_cli(qat(run));
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string weights = (run / "model.safetensors").string();
  const std::string codes = (root_ / "codes.safetensors").string();
  auto ex = run_cli("export --model resnet20 --dataset fashion-mnist --weights " + weights +
                    " --out " + codes);
  ASSERT_EQ(ex.code, 0) << ex.out;
  auto exported = tranq::load_safetensors(codes);
  auto trained = tranq::load_safetensors(weights);
  std::map<std::string, tranq::Tensor> t;
  for (auto& [n, v] : trained.tensors) t[n] = v;
  int layers = 0;
  for (auto& [n, v] : exported.tensors) {
    EXPECT_EQ(n.find("weight_prev_codes"), std::string::npos) << n;
    if (n.size() > 13 && n.substr(n.size() - 13) == ".weight_codes") {
      ++layers;
      // The codes of the last fake-quant forward are the training run's stored codes.
      EXPECT_EQ(v.to_vector<int8_t>(), t.at(n).to_vector<int8_t>()) << n;
      EXPECT_EQ(t.count(n.substr(0, n.size() - 6)), 1u);
    }
  }
  EXPECT_EQ(layers, 20) << "resnet20: 18 block convs and 2 projection convs are quantized";
  const std::string eval =
      "eval --model resnet20 --dataset fashion-mnist --threads 1 --data " + data_.string();
  auto a = run_cli(eval + " --weights " + weights);
  auto b = run_cli(eval + " --weights " + codes);
  ASSERT_EQ(a.code, 0) << a.out;
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_EQ(acc_of(a.out), acc_of(r.out));
  EXPECT_EQ(acc_of(b.out), acc_of(a.out));
  // Export of full-precision weights is refused with a clear message.
  auto bad = run_cli("export --model resnet20 --dataset fashion-mnist --weights " +
                     (root_ / "fp" / "model.safetensors").string() + " --out " +
                     (root_ / "x.safetensors").string());
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("QAT"), std::string::npos) << bad.out;
  EXPECT_FALSE(fs::exists(root_ / "x.safetensors"));
  // So is an exported model: its latent weights are gone.
  auto again = run_cli("export --model resnet20 --dataset fashion-mnist --weights " + codes +
                       " --out " + (root_ / "y.safetensors").string());
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.out.find("already an exported integer model"), std::string::npos) << again.out;
  EXPECT_FALSE(fs::exists(root_ / "y.safetensors"));
  // Neither QAT weights nor an export can start a run: --init-from takes full precision, and
  // the error says how to get it.
  for (const std::string& file : {weights, codes}) {
    auto init = run_cli(tranq::test::tiny_train_args(
        data_, "--epochs 1 --init-from " + file + " --out " + (root_ / "from_q").string()));
    EXPECT_EQ(init.code, 2) << init.out;
    EXPECT_NE(init.out.find("holds quantized weights"), std::string::npos) << init.out;
    EXPECT_NE(init.out.find("tranq convert"), std::string::npos) << init.out;
    EXPECT_FALSE(fs::exists(root_ / "from_q"));
  }
}
