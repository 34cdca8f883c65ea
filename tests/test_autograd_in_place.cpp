// In-place writes and autograd (core/autograd.h): what an op saved for backward is checked,
// what it did not save may change, a tensor with history cannot be written in place, and
// overlapping copies read the source as it was.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
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
  // Every kernel write counts, a fresh output's too (nothing saved it, so nothing changes).
  Tensor out = Tensor::empty({3}, DType::f64);
  const uint64_t fresh = out.version();
  kernels::scale(b, 2.0, out);
  EXPECT_EQ(out.version(), fresh + 1);
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

TEST(AutogradInPlace, ChangedLabelsMakeCrossEntropysBackwardThrow) {
  Tensor logits = test::random_tensor({2, 3}, 9, -1, 1, DType::f64);
  logits.set_requires_grad(true);
  Tensor labels = Tensor::from_vector<int64_t>({0, 1}, {2});
  Tensor loss = ops::cross_entropy(logits, labels);
  labels.fill_(2.0);
  expect_value_error([&] { loss.backward(); }, "'cross_entropy'");
}

TEST(AutogradInPlace, AKernelWritingIntoAnExistingOutputIsCounted) {
  // As torch's out=: a tensor a graph saved, overwritten by a kernel that does not read it.
  Tensor x = leaf({1, 2});
  Tensor a = Tensor::from_vector<double>({3, 4}, {2});
  Tensor loss = ops::sum(ops::mul(x, a));
  kernels::scale(Tensor::from_vector<double>({5, 6}, {2}), 1.0, a);
  expect_value_error([&] { loss.backward(); }, "'mul'");
  // And refused outright on a tensor with history.
  Tensor y = ops::mul(x, x);
  expect_value_error([&] { kernels::scale(Tensor::zeros({2}, DType::f64), 1.0, y); }, "scale");
}

TEST(AutogradInPlace, BackwardReleasesWhatTheGraphSaved) {
  // relu saves its input; once backward has run, only the caller's handles keep memory alive.
  Tensor x = leaf({1, -2, 3});
  Tensor a = ops::scale(x, 2.0);
  const std::weak_ptr<Buffer> a_memory = a.storage();
  Tensor b = ops::relu(a);
  a = Tensor();
  EXPECT_FALSE(a_memory.expired()) << "the graph holds relu's saved input";
  ops::sum(b).backward();
  EXPECT_TRUE(a_memory.expired()) << "backward freed it, though b is still held";
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 0, 2}));
}
