// kernels/int_div.h: the multiply-high division equals n / d and n % d for small and large
// divisors (powers of two and their neighbours included) and dividends up to 2^31 - 1.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "kernels/int_div.h"

using tranq::kernels::IntDiv;

namespace {

std::vector<uint32_t> divisors() {
  std::vector<uint32_t> d;
  for (uint32_t v = 1; v <= 4096; ++v) d.push_back(v);
  for (int k = 12; k <= 31; ++k) {
    const uint32_t p = uint32_t{1} << k;
    d.push_back(p - 1);
    d.push_back(p);
    if (k < 31) d.push_back(p + 1);
  }
  for (uint32_t v : {3136u, 12544u, 50176u, 802816u, 1000003u, 2147483647u}) d.push_back(v);
  return d;
}

std::vector<uint32_t> dividends(uint64_t seed) {
  std::vector<uint32_t> n;
  for (uint32_t v = 0; v < 1024; ++v) n.push_back(v);
  for (uint32_t v : {2147483647u, 2147483646u, 1073741824u, 1073741823u, 4294967u}) n.push_back(v);
  tranq::Rng rng(seed);
  for (int i = 0; i < 1024; ++i) n.push_back(static_cast<uint32_t>(rng.below(uint64_t{1} << 31)));
  return n;
}

}  // namespace

TEST(IntDiv, EqualsIntegerDivisionAndRemainder) {
  int64_t checked = 0;
  for (uint32_t d : divisors()) {
    const IntDiv f(d);
    EXPECT_EQ(f.divisor(), d);
    for (uint32_t n : dividends(d)) {
      // Plain comparisons in the inner loop: millions of them.
      if (f.div(n) != n / d || f.mod(n) != n % d) {
        FAIL() << n << " / " << d << ": got " << f.div(n) << " rem " << f.mod(n);
      }
      ++checked;
    }
    // The multiples of d and their neighbours, where a rounding error would show first.
    for (uint64_t q = 1; q * d < (uint64_t{1} << 31) && q < 4096; q = q * 3 + 1) {
      const uint32_t m = static_cast<uint32_t>(q * d);
      ASSERT_EQ(f.div(m), q) << m << " / " << d;
      ASSERT_EQ(f.div(m - 1), q - 1) << m - 1 << " / " << d;
    }
  }
  EXPECT_GT(checked, 8000000);
}

TEST(IntDiv, DefaultIsDivisionByOne) {
  const IntDiv f;
  EXPECT_EQ(f.div(12345), 12345u);
  EXPECT_EQ(f.mod(12345), 0u);
}
