#pragma once
// Thread count of the CPU backend. Results are bit-for-bit reproducible for a fixed count:
// every parallel reduction in kernels/cpu splits work statically and sums in a fixed order.
namespace tranq {
void set_num_threads(int n);  // n >= 1
int num_threads();
}  // namespace tranq
