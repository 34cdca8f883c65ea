// count_correct_into on the CPU: hand-checked ties and NaN rows, agreement with a naive loop on
// random inputs full of ties and NaNs (f32/f64 logits, i32/i64 labels), slot handling and
// argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "kernels/accuracy.h"

using namespace tranq;

namespace {

// Logits with few distinct values (many ties), some NaNs, and labels that hit the argmax often.
struct Inputs {
  std::vector<double> logits;
  std::vector<int64_t> labels;
};

Inputs random_inputs(int64_t n, int64_t c, uint64_t seed) {
  Rng rng(seed);
  Inputs in;
  for (int64_t i = 0; i < n * c; ++i) {
    const uint64_t r = rng.below(20);
    in.logits.push_back(r == 0 ? std::nan("") : static_cast<double>(rng.below(4)) - 1.5);
  }
  for (int64_t i = 0; i < n; ++i) in.labels.push_back(static_cast<int64_t>(rng.below(c)));
  return in;
}

// The reference: written out independently of the kernel, predicting with an explicit
// "is there an earlier element at least as large / a later one strictly larger" test.
int64_t naive_count(const Inputs& in, int64_t n, int64_t c) {
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double* row = in.logits.data() + i * c;
    int64_t pred = 0;
    double best = row[0];
    for (int64_t k = 1; k < c; ++k) {
      if (row[k] > best) {  // false whenever either side is NaN
        best = row[k];
        pred = k;
      }
    }
    if (pred == in.labels[static_cast<size_t>(i)]) ++correct;
  }
  return correct;
}

Tensor logits_tensor(const Inputs& in, int64_t n, int64_t c, DType dt) {
  return Tensor::from_vector(in.logits, {n, c}).to(dt);
}

Tensor labels_tensor(const Inputs& in, DType dt) {
  const int64_t n = static_cast<int64_t>(in.labels.size());
  if (dt == DType::i64) return Tensor::from_vector(in.labels, {n});
  std::vector<int32_t> v(in.labels.begin(), in.labels.end());
  return Tensor::from_vector(v, {n});
}

int64_t count(const Tensor& logits, const Tensor& labels) {
  const Tensor out = Tensor::full({3}, -7, DType::i64);
  kernels::count_correct_into(logits, labels, out, 1);
  const std::vector<int64_t> v = out.to_vector<int64_t>();
  EXPECT_EQ(v[0], -7) << "slot 0 written";
  EXPECT_EQ(v[2], -7) << "slot 2 written";
  return v[1];
}

}  // namespace

TEST(Accuracy, TiesPickTheLowestIndexAndNanNeverWins) {
  const double nan = std::nan("");
  // Predictions: row 0 -> 1 (tie 1,2), row 1 -> 0 (NaN first: nothing beats it), row 2 -> 2
  // (NaN in the middle skipped), row 3 -> 0 (all equal), row 4 -> 0 (2 < NaN false, 1 too).
  const std::vector<double> logits = {1, 3, 3, nan, 5, 2, 1, nan, 3, 4, 4, 4, 2, nan, 1};
  const Tensor x = Tensor::from_vector(logits, {5, 3});
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor xl = x.to(dt);
    EXPECT_EQ(count(xl, Tensor::from_vector<int32_t>({1, 0, 2, 0, 0}, {5})), 5);
    EXPECT_EQ(count(xl, Tensor::from_vector<int64_t>({2, 1, 1, 1, 2}, {5})), 0);
    EXPECT_EQ(count(xl, Tensor::from_vector<int64_t>({1, 1, 2, 2, 0}, {5})), 3);
  }
}

TEST(Accuracy, MatchesNaiveLoopOnRandomInputs) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1},   {7, 1},   {1, 10},
                                                           {33, 10}, {200, 3}, {64, 100}};
  uint64_t seed = 1;
  for (auto [n, c] : shapes) {
    const Inputs in = random_inputs(n, c, seed++);
    const int64_t expected = naive_count(in, n, c);
    for (DType dt : {DType::f32, DType::f64})
      for (DType lt : {DType::i32, DType::i64})
        EXPECT_EQ(count(logits_tensor(in, n, c, dt), labels_tensor(in, lt)), expected)
            << n << "x" << c << " " << dtype_name(dt) << " " << dtype_name(lt);
  }
}

TEST(Accuracy, OutOfRangeLabelsNeverMatchAndEmptyBatchCountsZero) {
  const Tensor x = Tensor::from_vector<float>({0, 1, 1, 0}, {2, 2});
  EXPECT_EQ(count(x, Tensor::from_vector<int32_t>({-1, 7}, {2})), 0);
  EXPECT_EQ(count(x, Tensor::from_vector<int32_t>({1, 0}, {2})), 2);
  EXPECT_EQ(count(Tensor::empty({0, 4}), Tensor::empty({0}, DType::i64)), 0);
}

TEST(Accuracy, SlotsAreIndependent) {
  const Tensor out = Tensor::zeros({4}, DType::i64);
  const Tensor x = Tensor::from_vector<float>({0, 1, 1, 0, 2, 2}, {3, 2});
  kernels::count_correct_into(x, Tensor::from_vector<int32_t>({1, 0, 0}, {3}), out, 3);
  kernels::count_correct_into(x, Tensor::from_vector<int32_t>({1, 1, 1}, {3}), out, 0);
  EXPECT_EQ(out.to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0, 3}));
}

TEST(Accuracy, ArgumentErrors) {
  const Tensor x = Tensor::zeros({2, 3});
  const Tensor y = Tensor::from_vector<int32_t>({0, 1}, {2});
  const Tensor out = Tensor::zeros({2}, DType::i64);
  auto call = [](const Tensor& a, const Tensor& b, const Tensor& o, int64_t i) {
    kernels::count_correct_into(a, b, o, i);
  };
  EXPECT_NO_THROW(call(x, y, out, 1));
  EXPECT_THROW(call(x, y, out, 2), ValueError);   // slot past the end
  EXPECT_THROW(call(x, y, out, -1), ValueError);  // negative slot
  EXPECT_THROW(call(Tensor::zeros({2, 3}, DType::i32), y, out, 0), ValueError);      // int logits
  EXPECT_THROW(call(Tensor::zeros({6}), y, out, 0), ValueError);                     // not [N,C]
  EXPECT_THROW(call(Tensor::zeros({2, 0}), y, out, 0), ValueError);                  // C = 0
  EXPECT_THROW(call(Tensor::zeros({3, 2}).transpose(0, 1), y, out, 0), ValueError);  // strided
  EXPECT_THROW(call(x, Tensor::from_vector<float>({0, 1}, {2}), out, 0), ValueError);
  EXPECT_THROW(call(x, Tensor::from_vector<int32_t>({0, 1, 2}, {3}), out, 0), ValueError);
  EXPECT_THROW(call(x, y, Tensor::zeros({2}, DType::i32), 0), ValueError);     // not i64
  EXPECT_THROW(call(x, y, Tensor::zeros({1, 2}, DType::i64), 0), ValueError);  // not 1-D
  EXPECT_THROW(call(x, y, Tensor(), 0), ValueError);
  EXPECT_THROW(call(Tensor(), y, out, 0), ValueError);
  try {
    call(x, y, out, 5);
    FAIL() << "no exception for slot 5";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("index 5"), std::string::npos) << e.what();
  }
}
