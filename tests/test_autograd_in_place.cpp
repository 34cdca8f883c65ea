// In-place writes and autograd (core/autograd.h): what an op saved for backward is checked,
// what it did not save may change, a tensor with history cannot be written in place, and
// overlapping copies read the source as it was.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "gradcheck.h"
#include "kernels/elementwise.h"
#include "layers/functional.h"

using namespace tranq;
using test::expect_value_error;

namespace {

Tensor leaf(std::vector<double> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  Tensor t = Tensor::from_vector<double>(v, {n});
  t.set_requires_grad(true);
  return t;
}

}  // namespace

TEST(AutogradInPlace, AKernelWritingOverASavedInputMakesBackwardThrow) {
  Tensor a = leaf({1, 2, 3});
  Tensor b = Tensor::from_vector<double>({10, 20, 30}, {3});
  Tensor loss = ops::sum(ops::mul(a, b));
  const uint64_t before = b.version();
  kernels::scale(b, 0.0, b);  // over its own input: counted like fill_
  EXPECT_EQ(b.version(), before + 1);
  expect_value_error([&] { loss.backward(); }, "'mul'");
  // A kernel writing to a fresh output does not count.
  Tensor out = Tensor::empty({3}, DType::f64);
  const uint64_t fresh = out.version();
  kernels::scale(b, 2.0, out);
  EXPECT_EQ(out.version(), fresh);
}

TEST(AutogradInPlace, InputsAnOpDoesNotSaveMayChange) {
  // add and sum keep nothing of their inputs: PyTorch lets b change before backward too.
  Tensor a = leaf({1, 2}), b = leaf({3, 4});
  Tensor loss = ops::sum(ops::add(a, b));
  b.detach().zero_();
  loss.backward();
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{1, 1}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1, 1}));
}

TEST(AutogradInPlace, ASavedOutputWrittenInPlaceMakesBackwardThrow) {
  // batch_norm_act keeps its own output as the ReLU mask.
  Tensor x = test::random_tensor({4, 2}, 5, -1, 1, DType::f64);
  x.set_requires_grad(true);
  Tensor y = ops::batch_norm_act(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5,
                                 Tensor(), /*relu=*/true);
  Tensor loss = ops::sum(y);
  y.detach().fill_(0.0);  // the same memory, through a handle without history
  expect_value_error([&] { loss.backward(); }, "'batch_norm_act'");
}

TEST(AutogradInPlace, ATensorWithHistoryCannotBeWrittenInPlace) {
  Tensor a = leaf({1, 2, 3});
  Tensor y = ops::mul(a, a);
  expect_value_error([&] { y.fill_(5.0); }, "autograd history");
  expect_value_error([&] { y.zero_(); }, "'mul'");
  expect_value_error([&] { y.copy_(Tensor::zeros({3}, DType::f64)); }, "copy_");
  expect_value_error([&] { kernels::scale(y, 2.0, y); }, "scale");
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{1, 4, 9})) << "nothing was written";
  // Writing under NoGradGuard is the caller's explicit choice, as in PyTorch.
  {
    NoGradGuard no_grad;
    y.fill_(5.0);
  }
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{5, 5, 5}));
}

TEST(TensorCopy, OverlappingSourceAndDestinationReadTheSourceAsItWas) {
  // Contiguous overlap: a shift by one element (memmove semantics, not memcpy).
  Tensor t = Tensor::from_vector<double>({0, 1, 2, 3, 4, 5}, {6});
  t.narrow(0, 1, 5).copy_(t.narrow(0, 0, 5));
  EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{0, 0, 1, 2, 3, 4}));
  Tensor u = Tensor::from_vector<double>({0, 1, 2, 3, 4, 5}, {6});
  u.narrow(0, 0, 5).copy_(u.narrow(0, 1, 5));
  EXPECT_EQ(u.to_vector<double>(), (std::vector<double>{1, 2, 3, 4, 5, 5}));
  // Strided overlap: a matrix replaced by its own transpose.
  Tensor m = Tensor::from_vector<double>({1, 2, 3, 4}, {2, 2});
  m.copy_(m.transpose(0, 1));
  EXPECT_EQ(m.to_vector<double>(), (std::vector<double>{1, 3, 2, 4}));
  // The very same view: nothing to do, and nothing counted.
  const uint64_t v = m.version();
  m.copy_(m);
  EXPECT_EQ(m.version(), v);
  EXPECT_TRUE(same_view(m, m));
  EXPECT_FALSE(same_view(m, m.transpose(0, 1)));
  EXPECT_TRUE(memory_overlaps(m, m.transpose(0, 1)));
  EXPECT_FALSE(memory_overlaps(t.narrow(0, 0, 3), t.narrow(0, 3, 3)));
  EXPECT_FALSE(memory_overlaps(t, Tensor::zeros({6}, DType::f64)));
}
