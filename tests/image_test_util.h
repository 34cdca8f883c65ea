#pragma once
// Helpers of the image tests (JPEG decoding, resizing, crop boxes): 8-bit pixel buffers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace tranq::test {

using Bytes = std::vector<uint8_t>;

// The largest per-byte difference of two equally sized buffers (a size mismatch fails the test).
inline int max_abs_diff(const Bytes& a, const Bytes& b) {
  EXPECT_EQ(a.size(), b.size());
  int m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace tranq::test
