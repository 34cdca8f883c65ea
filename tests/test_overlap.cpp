// Outputs written over inputs: the very same view is an in-place update; a partial overlap is
// refused before anything is written.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/qat_fused.h"
#include "kernels/quantize.h"
#include "kernels/transition_stats.h"

using namespace tranq;

namespace {

Tensor iota(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i + 1);
  return Tensor::from_vector(v, {n});
}

template <class F>
void expect_overlap_error(F fn, const std::string& op) {
  try {
    fn();
    ADD_FAILURE() << op << ": expected a ValueError for a partial overlap";
  } catch (const ValueError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(op + ": the output"), std::string::npos) << what;
    EXPECT_NE(what.find("overlaps an input"), std::string::npos) << what;
  }
}

}  // namespace

TEST(Overlap, ShiftedViewIsRefusedAndNothingIsWritten) {
  const Tensor a = iota(8);
  const Tensor in = a.narrow(0, 0, 4), out = a.narrow(0, 1, 4);
  const std::vector<float> before = a.to_vector<float>();
  expect_overlap_error([&] { kernels::add(in, in, out); }, "add");
  expect_overlap_error([&] { kernels::axpby(1.0, in, 2.0, in, out); }, "axpby");
  expect_overlap_error([&] { kernels::mul(in, in, out); }, "mul");
  expect_overlap_error([&] { kernels::scale(in, 2.0, out); }, "scale");
  expect_overlap_error([&] { kernels::relu_forward(in, out, 0.0); }, "relu_forward");
  expect_overlap_error([&] { kernels::relu_backward(in, in, out, 0.0); }, "relu_backward");
  const Tensor mask = Tensor::ones({4}, DType::u8);
  expect_overlap_error([&] { kernels::dropout_apply(in, mask, 2.0, out); }, "dropout_apply");
  const Tensor s = Tensor::full({1}, 4.0);
  const kernels::QuantRange r = kernels::weight_range(2);
  expect_overlap_error([&] { kernels::fake_quantize_forward(in, s, r, out, Tensor()); },
                       "fake_quantize_forward");
  expect_overlap_error([&] { kernels::fake_quantize_backward(in, s, r, in, out, Tensor(), 1.0); },
                       "fake_quantize_backward");
  const Tensor codes = Tensor::zeros({4}, DType::i8), prev = Tensor::zeros({4}, DType::i8);
  kernels::weight_transition_init(in, s, r, codes, prev, 0.1);
  expect_overlap_error([&] { kernels::quantize_weight_and_count(in, s, r, out, codes, prev, 0.1); },
                       "quantize_weight_and_count");
  EXPECT_EQ(a.to_vector<float>(), before);
}

TEST(Overlap, SameViewReshapeAndDisjointViewsAreAccepted) {
  const Tensor a = iota(8);
  kernels::add(a, a, a);  // in place
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{2, 4, 6, 8, 10, 12, 14, 16}));
  kernels::scale(a.view({8}), 0.5, a.narrow(0, 0, 8));  // another handle on the same view
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));
  kernels::mul(a.narrow(0, 0, 4), a.narrow(0, 0, 4), a.narrow(0, 4, 4));  // disjoint halves
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 1, 4, 9, 16}));
  const Tensor s = Tensor::full({1}, 4.0);
  const Tensor w = iota(4);
  kernels::fake_quantize_forward(w, s, kernels::weight_range(2), w, Tensor());  // in place
  // round_half_even(clip(2 * w / 4, -2, 1)) / 2 for w = 1..4: 0.5 rounds to 0.
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{0.0f, 0.5f, 0.5f, 0.5f}));
}
