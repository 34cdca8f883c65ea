// Single-core throughput of the JPEG-folder sample pipeline (read file + decode + crop/resize +
// flip + normalise to f32 CHW, datasets/image_folder.h) on photo-like 500x375 JPEGs, to compare
// with PIL + torchvision (benchmarks/pil_jpeg_pipeline.py does the same work):
//   build-*/benchmarks/bench_jpeg_pipeline --benchmark_min_time=2
// The files are generated once into a temporary directory that is removed at exit. To time both
// pipelines on the very same files, set TRANQ_JPEG_BENCH_DIR=DIR: the files are then written to
// DIR (or reused from it when present) and kept, and
//   /usr/bin/python3 benchmarks/pil_jpeg_pipeline.py --dir DIR
// reads them.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/rng.h"
#include "datasets/image_folder.h"
#include "datasets/jpeg.h"
#include "datasets/transforms.h"

using namespace tranq;
using namespace tranq::data;
namespace fs = std::filesystem;

namespace {

constexpr int kFiles = 64;
constexpr int64_t kWidth = 500, kHeight = 375;

// Smooth gradients and two low-frequency waves per channel, plus uniform noise of +-8 levels:
// roughly the entropy of a photo at quality 90 (files of about 40-60 kB).
std::vector<uint8_t> photo_like(uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> p(static_cast<size_t>(kWidth * kHeight * 3));
  double base[3], gx[3], gy[3], amp[3], fx[3], fy[3], phase[3];
  for (int c = 0; c < 3; ++c) {
    base[c] = rng.uniform(40, 200);
    gx[c] = rng.uniform(-0.2, 0.2);
    gy[c] = rng.uniform(-0.2, 0.2);
    amp[c] = rng.uniform(10, 40);
    fx[c] = rng.uniform(0.005, 0.05);
    fy[c] = rng.uniform(0.005, 0.05);
    phase[c] = rng.uniform(0, 6.28);
  }
  for (int64_t y = 0; y < kHeight; ++y) {
    for (int64_t x = 0; x < kWidth; ++x) {
      for (int c = 0; c < 3; ++c) {
        const double v = base[c] + gx[c] * (x - kWidth / 2) + gy[c] * (y - kHeight / 2) +
                         amp[c] * std::sin(fx[c] * x + phase[c]) * std::cos(fy[c] * y) +
                         rng.uniform(-8, 8);
        p[static_cast<size_t>((y * kWidth + x) * 3 + c)] =
            static_cast<uint8_t>(std::lround(std::fmin(255.0, std::fmax(0.0, v))));
      }
    }
  }
  return p;
}

struct BenchFiles {
  fs::path dir;
  bool keep = false;
  std::vector<std::string> paths;
  int64_t bytes = 0;
  BenchFiles() {
    const char* env = std::getenv("TRANQ_JPEG_BENCH_DIR");
    keep = env && *env;
    dir = keep ? fs::path(env)
               : fs::temp_directory_path() / ("tranq_bench_jpeg_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    for (int i = 0; i < kFiles; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "img_%03d.jpg", i);
      const fs::path p = dir / name;
      if (!fs::exists(p)) {
        const std::vector<uint8_t> px = photo_like(1000 + static_cast<uint64_t>(i));
        const std::vector<uint8_t> jpg = encode_jpeg(px.data(), kWidth, kHeight, 3, 90);
        std::FILE* f = std::fopen(p.c_str(), "wb");
        if (!f || std::fwrite(jpg.data(), 1, jpg.size(), f) != jpg.size()) std::abort();
        std::fclose(f);
      }
      paths.push_back(p.string());
      bytes += static_cast<int64_t>(fs::file_size(p));
    }
  }
  ~BenchFiles() {
    if (!keep) fs::remove_all(dir);
  }
};

const BenchFiles& bench_files() {
  static BenchFiles f;
  return f;
}

void run_pipeline(benchmark::State& state, bool train) {
  const BenchFiles& files = bench_files();
  FolderTransform t;
  t.train = train;
  t.norm = imagenet_normalization();
  std::vector<float> out(static_cast<size_t>(3 * t.size * t.size));
  int64_t i = 0;
  for (auto _ : state) {
    const size_t k = static_cast<size_t>(i % kFiles);
    Rng rng = sample_rng(0, 0, i);
    std::string error;
    if (!load_folder_sample(files.paths[k], t, rng, out.data(), &error)) {
      state.SkipWithError(error.c_str());
      break;
    }
    benchmark::DoNotOptimize(out.data());
    ++i;
  }
  state.counters["images_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["avg_file_kB"] = static_cast<double>(files.bytes) / kFiles / 1000.0;
}

void BM_TrainRandomResizedCrop224(benchmark::State& state) {
  run_pipeline(state, true);
}
void BM_EvalResize256CenterCrop224(benchmark::State& state) {
  run_pipeline(state, false);
}

// For scale: the full-size decode alone, from memory.
void BM_DecodeFullSizeOnly(benchmark::State& state) {
  const BenchFiles& files = bench_files();
  std::vector<std::vector<uint8_t>> data;
  for (const std::string& p : files.paths) {
    std::vector<uint8_t> b(static_cast<size_t>(fs::file_size(p)));
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (!f || std::fread(b.data(), 1, b.size(), f) != b.size()) std::abort();
    std::fclose(f);
    data.push_back(std::move(b));
  }
  int64_t i = 0;
  for (auto _ : state) {
    const auto& d = data[static_cast<size_t>(i++ % kFiles)];
    RgbImage img = decode_jpeg(d.data(), d.size(), 1, "bench");
    benchmark::DoNotOptimize(img.pixels.data());
  }
  state.counters["images_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_TrainRandomResizedCrop224)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EvalResize256CenterCrop224)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeFullSizeOnly)->Unit(benchmark::kMillisecond);

}  // namespace
