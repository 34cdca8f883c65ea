// StepStats on the CPU: records come back in step order with loss.item()'s value and a naive
// correct count, across several flushes and past the buffers' initial capacity; NaN losses
// survive; mixing dtypes while steps are pending is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "apps/step_stats.h"
#include "core/rng.h"
#include "gradcheck.h"
#include "layers/functional.h"

using namespace tranq;
using app::StepRecord;
using app::StepStats;

namespace {

struct Step {
  Tensor loss, logits, labels;
  double loss_value;
  int64_t correct;
};

// Logits from a few distinct values (ties), labels that often match; correct counted naively.
Step make_step(uint64_t seed, DType loss_dtype = DType::f32) {
  Rng rng(seed);
  const int64_t n = 1 + static_cast<int64_t>(rng.below(9)), c = 4;
  std::vector<float> x(static_cast<size_t>(n * c));
  for (float& v : x) v = static_cast<float>(rng.below(3));
  std::vector<int32_t> y(static_cast<size_t>(n));
  for (int32_t& v : y) v = static_cast<int32_t>(rng.below(c));
  Step s;
  s.logits = Tensor::from_vector(x, {n, c});
  s.labels = Tensor::from_vector(y, {n});
  s.loss = Tensor::full({}, rng.uniform(0.0, 5.0), loss_dtype);
  s.loss_value = s.loss.item();
  s.correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t k = 1; k < c; ++k)
      if (x[static_cast<size_t>(i * c + k)] > x[static_cast<size_t>(i * c + best)]) best = k;
    s.correct += best == y[static_cast<size_t>(i)];
  }
  return s;
}

void expect_records(const std::vector<StepRecord>& got, const std::vector<Step>& steps) {
  ASSERT_EQ(got.size(), steps.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].loss, steps[i].loss_value) << "step " << i;
    EXPECT_EQ(got[i].correct, steps[i].correct) << "step " << i;
    EXPECT_EQ(got[i].n, steps[i].labels.numel()) << "step " << i;
  }
}

}  // namespace

TEST(StepStats, FlushReturnsPendingStepsInOrderAndClears) {
  StepStats stats;
  EXPECT_TRUE(stats.flush().empty());
  std::vector<Step> steps;
  for (uint64_t s = 0; s < 5; ++s) {
    steps.push_back(make_step(s));
    stats.add(steps.back().loss, steps.back().logits, steps.back().labels);
  }
  EXPECT_EQ(stats.pending(), 5);
  expect_records(stats.flush(), steps);
  EXPECT_EQ(stats.pending(), 0);
  EXPECT_TRUE(stats.flush().empty());

  // The slots are reused after a flush: only the new steps come back.
  steps.clear();
  for (uint64_t s = 100; s < 103; ++s) {
    steps.push_back(make_step(s));
    stats.add(steps.back().loss, steps.back().logits, steps.back().labels);
  }
  expect_records(stats.flush(), steps);
}

TEST(StepStats, GrowsBeyondItsInitialCapacity) {
  for (DType dt : {DType::f32, DType::f64}) {
    StepStats stats;
    std::vector<Step> steps;
    for (uint64_t s = 0; s < 150; ++s) {  // several doublings of the initial 32 slots
      steps.push_back(make_step(1000 + s, dt));
      stats.add(steps.back().loss, steps.back().logits, steps.back().labels);
    }
    expect_records(stats.flush(), steps);
  }
}

TEST(StepStats, KeepsTheValueOfARealLossAndNonFiniteLosses) {
  StepStats stats;
  Tensor logits = test::random_tensor({6, 5}, 3, -2.0, 2.0, DType::f32);
  logits.set_requires_grad(true);
  const Tensor labels = Tensor::from_vector<int32_t>({0, 4, 2, 2, 1, 3}, {6});
  const Tensor loss = ops::cross_entropy(logits, labels);
  const double real_loss = loss.item();
  stats.add(loss, logits, labels);
  stats.add(Tensor::full({}, std::nan(""), DType::f32), logits, labels);
  stats.add(Tensor::full({1}, INFINITY, DType::f32), logits, labels);
  const std::vector<StepRecord> r = stats.flush();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].loss, real_loss);
  EXPECT_TRUE(std::isnan(r[1].loss));
  EXPECT_EQ(r[2].loss, INFINITY);
  // The count of argmax == label, from the logits' values.
  const std::vector<float> x = logits.detach().to_vector<float>();
  const std::vector<int32_t> y = labels.to_vector<int32_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < 6; ++i) {
    int64_t best = 0;
    for (int64_t k = 1; k < 5; ++k)
      if (x[static_cast<size_t>(i * 5 + k)] > x[static_cast<size_t>(i * 5 + best)]) best = k;
    correct += best == y[static_cast<size_t>(i)];
  }
  for (const StepRecord& rec : r) {
    EXPECT_EQ(rec.correct, correct);
    EXPECT_EQ(rec.n, 6);
  }
}

TEST(StepStats, RefusesMixedLossDtypesWhilePendingAndBadArguments) {
  StepStats stats;
  const Step a = make_step(1, DType::f32), b = make_step(2, DType::f64);
  stats.add(a.loss, a.logits, a.labels);
  EXPECT_THROW(stats.add(b.loss, b.logits, b.labels), ValueError);
  EXPECT_THROW(stats.add(Tensor::zeros({2}), a.logits, a.labels), ValueError);  // not a scalar
  EXPECT_THROW(stats.add(Tensor::zeros({}, DType::i32), a.logits, a.labels), ValueError);
  EXPECT_THROW(stats.add(a.loss, a.logits, Tensor::zeros({1}, DType::i32)), ValueError);
  EXPECT_EQ(stats.pending(), 1) << "a refused step must not be queued";
  expect_records(stats.flush(), {a});
  stats.add(b.loss, b.logits, b.labels);  // another dtype once nothing is pending
  expect_records(stats.flush(), {b});
}
