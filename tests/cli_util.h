#pragma once
// Runs the tranq CLI as a child process and writes tiny data sets in the real file formats.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace tranq::test {

struct CliResult {
  int code = -1;
  std::string out;  // stdout and stderr together
};

inline CliResult run_cli(const std::string& args) {
  std::string cmd = std::string(TRANQ_CLI_PATH) + " " + args + " 2>&1";
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline void write_be32(std::ofstream& f, uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24),
                              static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  f.write(reinterpret_cast<const char*>(b), 4);
}

// A Fashion-MNIST-shaped IDX data set (plain files) whose class is readable from the image:
// class k draws a bright square at a class-specific place, so a small net can learn it.
inline void write_tiny_idx(const std::filesystem::path& dir, int n_train, int n_test) {
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& prefix, int n, uint32_t seed) {
    std::ofstream im(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary);
    std::ofstream lb(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
    write_be32(im, 0x803);
    write_be32(im, static_cast<uint32_t>(n));
    write_be32(im, 28);
    write_be32(im, 28);
    write_be32(lb, 0x801);
    write_be32(lb, static_cast<uint32_t>(n));
    uint32_t s = seed;
    for (int i = 0; i < n; ++i) {
      const int label = i % 10;
      std::vector<unsigned char> img(28 * 28);
      for (auto& p : img) {
        s = s * 1664525u + 1013904223u;
        p = static_cast<unsigned char>((s >> 24) % 40);
      }
      const int r0 = 2 + (label / 4) * 8, c0 = 2 + (label % 4) * 6;
      for (int r = r0; r < r0 + 6; ++r)
        for (int c = c0; c < c0 + 5; ++c) img[r * 28 + c] = 250;
      im.write(reinterpret_cast<const char*>(img.data()), static_cast<std::streamsize>(img.size()));
      const unsigned char l = static_cast<unsigned char>(label);
      lb.write(reinterpret_cast<const char*>(&l), 1);
    }
  };
  write("train", n_train, 1);
  write("t10k", n_test, 2);
}

// A fresh directory per test (removed afterwards) holding a tiny IDX data set in data_.
class TempRunDir : public ::testing::Test {
 protected:
  void make_dirs(int n_train, int n_test) {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ("tranq_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    data_ = root_ / "data";
    write_tiny_idx(data_, n_train, n_test);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::filesystem::path root_, data_;
};

// The QAT runs of the CLI tests on a tiny data set: ResNet-20, batch 16, one metrics line a
// step (tiny_train_args), and 2 epochs of W2A2 SGDT from a full-precision model
// (tiny_qat_args); `extra` adds flags.
inline std::string tiny_train_args(const std::filesystem::path& data, const std::string& extra) {
  return "train --dataset fashion-mnist --data " + data.string() +
         " --model resnet20 --batch-size 16 --seed 5 --threads 1 --workers 1 --log-every 1 " +
         extra;
}
inline std::string tiny_qat_args(const std::filesystem::path& data,
                                 const std::filesystem::path& fp_model,
                                 const std::filesystem::path& out, const std::string& extra) {
  return tiny_train_args(data,
                         "--epochs 2 --lr 0.02 --wbits 2 --optimizer sgdt --target-tr 0.01 "
                         "--init-from " +
                             fp_model.string() + " --out " + out.string() + " " + extra);
}

inline std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// A run's metrics.jsonl lines without their timings, which differ between any two runs.
inline std::vector<nlohmann::json> metrics_without_timings(const std::filesystem::path& run) {
  std::istringstream lines(read_bytes(run / "metrics.jsonl"));
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(lines, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    j.erase("images_per_s");
    out.push_back(j);
  }
  return out;
}

// The accuracy a command printed last ("test_acc=NN.NN"), or -1 when it printed none.
inline double test_acc_of(const std::string& out) {
  const auto p = out.rfind("test_acc=");
  return p == std::string::npos ? -1 : std::stod(out.substr(p + 9));
}

}  // namespace tranq::test
