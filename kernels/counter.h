#pragma once
// In-place integer counters on the tensor's device: a module's step counters (BatchNorm2d's
// num_batches_tracked) advance without a host round trip on a GPU.
#include <cstdint>

#include "core/tensor.h"

namespace tranq::kernels {

// t[i] += by for every element of t (contiguous i64). ValueError otherwise.
void add_to_counter(const Tensor& t, int64_t by);

namespace cpu {
void add_to_counter(const Tensor& t, int64_t by);
}  // namespace cpu

// CUDA version (kernels/cuda/counter.cu): one queued kernel, no wait.
namespace cuda {
void add_to_counter(const Tensor& t, int64_t by);
}  // namespace cuda

}  // namespace tranq::kernels
