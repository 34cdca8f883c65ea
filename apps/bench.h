#pragma once
#include <cstdint>
#include <string>

namespace tranq::app {

struct BenchConfig {
  std::string model = "resnet20";
  std::string input = "3x32x32";  // CxHxW
  int64_t batch_size = 128;
  int64_t iters = 20;
  int64_t warmup = 3;
  int64_t num_classes = 10;
  int threads = 2;
  std::string device = "cpu";     // cpu, cuda, cuda:N
  std::string optimizer = "sgd";  // sgd|adam|adamw|sgdt|adamt|adamwt
  int weight_bits = 0;            // > 0: time QAT steps (the transform of tranq train --wbits)
  int act_bits = 0;
  std::string precision = "fp32";  // fp32|bf16: conv/linear products (kernels/precision.h)
  bool tf32 = false;  // f32 GEMMs/convolutions on CUDA may use TF32 (kernels::set_allow_tf32);
                      // CUDA only
};

// The optimizer's learning rate in every bench step (the PyTorch peer,
// benchmarks/torch_resnet20_step.py, uses the same).
constexpr double kBenchLr = 0.01;

// Times full training steps (forward, cross-entropy, backward, optimizer step and, for QAT,
// the transition count and TALR update) on random data and returns one JSON line: step_ms
// (median), images_per_s, loss_first/loss_last, peak_rss_mb and the settings; on CUDA also
// peak_device_mb (the peak of the bytes tensors asked for, cuda::MemoryStats::
// peak_requested_bytes), peak_device_reserved_mb (the peak held from the driver, bins and
// cache) and host_waits_per_step. ValueError for --tf32 on a device other than CUDA.
std::string run_bench(const BenchConfig& cfg);

}  // namespace tranq::app
