#include "apps/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "apps/device.h"
#include "apps/run_setup.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "kernels/cross_entropy.h"
#include "kernels/cuda_runtime.h"
#include "kernels/gemm.h"
#include "layers/functional.h"
#include "quant/transform.h"

namespace tranq::app {

namespace {
Shape parse_input(const std::string& s) {
  Shape dims;
  size_t start = 0;
  while (start <= s.size()) {
    size_t x = s.find('x', start);
    std::string part = s.substr(start, x == std::string::npos ? std::string::npos : x - start);
    char* end = nullptr;
    long v = std::strtol(part.c_str(), &end, 10);
    TRANQ_CHECK(!part.empty() && *end == '\0' && v > 0,
                "--input must look like CxHxW with positive integers (e.g. 3x32x32), got '{}'", s);
    dims.push_back(v);
    if (x == std::string::npos) break;
    start = x + 1;
  }
  TRANQ_CHECK(dims.size() == 3, "--input must look like CxHxW (e.g. 3x32x32), got '{}'", s);
  return dims;
}

// The TF32 switch for the bench's duration: it is process-wide, and run_bench is a library call.
class Tf32Scope {
 public:
  explicit Tf32Scope(bool allow) : previous_(kernels::allow_tf32()) {
    kernels::set_allow_tf32(allow);
  }
  ~Tf32Scope() { kernels::set_allow_tf32(previous_); }
  Tf32Scope(const Tf32Scope&) = delete;
  Tf32Scope& operator=(const Tf32Scope&) = delete;

 private:
  bool previous_;
};
}  // namespace

std::string run_bench(const BenchConfig& cfg) {
  TRANQ_CHECK(cfg.batch_size >= 1 && cfg.iters >= 1, "--batch-size and --iters must be positive");
  TRANQ_CHECK(cfg.warmup >= 0, "--warmup must be >= 0, got {}", cfg.warmup);
  set_num_threads(cfg.threads);
  const Device device = select_device(cfg.device);
  // Refused rather than reported: the CPU's f32 products are always exact, so a CPU row marked
  // TF32 would claim a setting that had no effect.
  TRANQ_CHECK(!cfg.tf32 || device.is_cuda(),
              "--tf32 applies to CUDA only (TF32 tensor cores; f32 products on {} are always "
              "exact): drop --tf32 or give --device cuda",
              device.str());
  const Tf32Scope tf32(cfg.tf32);
  const Shape chw = parse_input(cfg.input);
  TrainConfig tc;
  tc.model = cfg.model;
  tc.optimizer = cfg.optimizer;
  tc.lr = kBenchLr;
  tc.weight_bits = cfg.weight_bits;
  tc.act_bits = cfg.act_bits;
  tc.precision = cfg.precision;
  validate(tc);  // the flag checks of tranq train (--abits needs --wbits, ...)
  RunSetup run = build_run(tc, chw[0], cfg.num_classes, cfg.warmup + cfg.iters);
  Module* model = run.model.get();
  model->to(device);
  optim::Optimizer* opt = run.opt.get();

  Rng rng(1);
  Tensor x = Tensor::empty({cfg.batch_size, chw[0], chw[1], chw[2]});
  float* px = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) px[i] = static_cast<float>(rng.normal());
  std::vector<int32_t> labels(static_cast<size_t>(cfg.batch_size));
  for (auto& l : labels)
    l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(cfg.num_classes)));
  Tensor y = Tensor::from_vector(labels, {cfg.batch_size});
  kernels::check_labels(y, cfg.num_classes, "bench");  // once, instead of in every step's loss
  y = y.to(device);
  x = x.to(device);

  model->train();
  if (run.qat) {
    quant::calibrate_activation_scales(*model, x);
    run.qat->initialise();
  }
  std::vector<double> ms;
  uint64_t waits = 0;  // host waits inside the timed steps, before the timing's own wait
  double loss_first = 0, loss_last = 0;
  for (int64_t i = 0; i < cfg.warmup + cfg.iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    const uint64_t waits_before = device.is_cuda() ? cuda::host_wait_count() : 0;
    if (run.qat) run.qat->before_step(*opt);
    opt->zero_grad();
    Tensor loss = ops::cross_entropy(model->forward(x), y, 0.0, /*labels_checked=*/true);
    loss.backward();
    opt->step();
    if (run.qat) run.qat->after_step(i);
    if (device.is_cuda() && i >= cfg.warmup) waits += cuda::host_wait_count() - waits_before;
    if (!device.is_cpu()) loss.item();  // waits for the device's queued work
    double dt =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= cfg.warmup) ms.push_back(dt);
    // Outside the timing: a step that computes garbage fast must not pass for a fast step.
    const double l = loss.item();
    TRANQ_CHECK(std::isfinite(l),
                "bench: step {} gave a non-finite loss ({}); the timings of a "
                "broken step mean nothing",
                i, l);
    if (i == 0) loss_first = l;
    loss_last = l;
  }
  std::sort(ms.begin(), ms.end());
  const double median =
      ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  nlohmann::json j = {
      {"framework", "tranq"},
      {"model", cfg.model},
      {"input", cfg.input},
      {"batch_size", cfg.batch_size},
      {"threads", cfg.threads},
      {"device", device.str()},
      {"optimizer", cfg.optimizer},
      {"precision", cfg.precision},
      {"tf32", cfg.tf32},
      {"wbits", cfg.weight_bits},
      {"abits", cfg.weight_bits > 0 && cfg.act_bits == 0 ? cfg.weight_bits : cfg.act_bits},
      {"iters", cfg.iters},
      {"step_ms", std::round(median * 100) / 100},
      {"step_ms_min", std::round(ms.front() * 100) / 100},
      {"images_per_s", std::round(cfg.batch_size / (median / 1000) * 10) / 10},
      {"loss_first", loss_first},
      {"loss_last", loss_last},
      {"peak_rss_mb", std::round(ru.ru_maxrss / 1024.0 * 10) / 10}};
  if (device.is_cuda()) {
    const cuda::MemoryStats mem = cuda::memory_stats(device.index);
    auto mib = [](size_t bytes) {
      return std::round(static_cast<double>(bytes) / (1024.0 * 1024.0) * 10) / 10;
    };
    // The bytes tensors asked for, as PyTorch's max_memory_allocated; and what the allocator
    // held from the driver (bins and cache), as its max_memory_reserved.
    j["peak_device_mb"] = mib(mem.peak_requested_bytes);
    j["peak_device_reserved_mb"] = mib(mem.peak_reserved_bytes);
    // 0 when a step only queues work (the loss read that ends each timed step not counted).
    j["host_waits_per_step"] = static_cast<double>(waits) / static_cast<double>(cfg.iters);
  }
  return j.dump();
}

}  // namespace tranq::app
