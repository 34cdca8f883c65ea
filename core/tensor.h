#pragma once
// Tensor: a shared handle to (storage, offset, shape, strides, dtype) plus autograd metadata.
// Copies of a Tensor alias the same data (like torch.Tensor); clone() copies the data.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/error.h"

namespace tranq {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
// The shape flatten(start_dim) gives: the dims before start_dim kept, the rest merged into one.
// A negative start_dim counts from the end; a 0-d shape counts as one dim (it becomes [1]).
// Throws ValueError, naming the valid range, when start_dim is outside [-dim, dim).
Shape flattened_shape(const Shape& s, int64_t start_dim);

struct Node;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Factories. Memory from empty() is uninitialised. Dims must be >= 0, and the size in bytes of
  // the non-zero dims must fit in int64 (so numel, nbytes and strides never overflow, even in a
  // view of an empty tensor); otherwise ValueError.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
                     Device device = Device::cpu());
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  static Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
  // Host tensor in page-locked memory (core/allocator.h pinned_allocator()).
  static Tensor empty_pinned(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  // Size of dimension d; negative d counts from the end.
  int64_t size(int64_t d) const;
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  int64_t offset() const;  // in elements, into the storage
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

  // Typed access to the first element (offset applied). Throws ValueError on a dtype mismatch.
  template <class T>
  T* data() const;
  void* raw_data() const;
  const std::shared_ptr<Buffer>& storage() const;

  // Views share storage. view() needs a contiguous tensor; dims are >= 0 except that one may be
  // -1 (inferred from the others). These methods, contiguous() and to() record no autograd
  // history: a gradient does not flow through them. Differentiable reshapes are the ops in
  // layers/functional.h (ops::reshape, ops::flatten).
  Tensor view(const Shape& shape) const;
  Tensor reshape(const Shape& shape) const;     // a view when possible, a copy otherwise
  Tensor flatten(int64_t start_dim = 0) const;  // reshape(flattened_shape(shape(), start_dim))
  // Elements [start, start + length) of dim; needs 0 <= start <= size(dim), 0 <= length <=
  // size(dim) - start.
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // drops dim
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor contiguous() const;
  Tensor clone() const;            // contiguous deep copy, no autograd history
  Tensor to(Device device) const;  // same tensor when already there
  // non_blocking: a contiguous host tensor in page-locked memory (empty_pinned) going to a GPU
  // is copied without waiting (DeviceBackend::copy_from_pinned_async): the result is ready for
  // work on that device, and the host tensor may be freed or dropped at once, but must not be
  // written until the copy has run. Otherwise the same as to(device).
  Tensor to(Device device, bool non_blocking) const;
  // Converted copy (CPU); same tensor when already that dtype. Floating point to integer
  // truncates toward zero and saturates to the integer type's range (300.f -> i8 127, -1e30 ->
  // i32 min, +-inf -> max/min); NaN becomes 0. Integer to a narrower integer wraps (two's
  // complement); to floating point rounds to nearest.
  Tensor to(DType dtype) const;
  // Copies src (same shape, dtype) into this tensor's memory, which may be a strided view.
  void copy_(const Tensor& src) const;
  // non_blocking: src a contiguous host tensor in page-locked memory and this a contiguous GPU
  // tensor: the copy is queued on the device's current stream without waiting, as in
  // to(device, true). Otherwise the same as copy_(src).
  void copy_(const Tensor& src, bool non_blocking) const;
  void fill_(double value) const;  // value converted to dtype() as in to(DType)
  void zero_() const;
  // The in-place writes to this tensor's memory so far (Buffer::version; shared by views), and
  // marking one: what ops that write a tensor in place outside this API (an optimizer step)
  // call, so that a backward through a graph that saved the tensor fails instead of using the
  // new values. 0 / nothing for an undefined tensor.
  uint64_t version() const;
  void bump_version() const;

  template <class T>
  std::vector<T> to_vector() const;
  // The single element as double (numel must be 1).
  double item() const;

  // ---- autograd ----
  // A tensor that shares this one's data but has no history and does not require grad.
  Tensor detach() const;
  bool requires_grad() const;
  // Only leaves (tensors without grad_fn) may have requires_grad set by hand.
  Tensor& set_requires_grad(bool value);
  // Gradient of a leaf after backward(); undefined until a backward pass reaches it.
  // Gradients ACCUMULATE across backward() calls (sum), as in PyTorch; clear with zero_grad().
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  void zero_grad() const;  // drops the gradient (grad() becomes undefined)
  const std::shared_ptr<Node>& grad_fn() const;
  void set_grad_fn(std::shared_ptr<Node> node) const;
  // Runs reverse-mode differentiation from this tensor. grad defaults to ones for a scalar.
  void backward(const Tensor& grad = Tensor()) const;

  bool same_as(const Tensor& o) const { return impl_ == o.impl_; }
  TensorImpl* impl() const { return impl_.get(); }
  // Number of Tensor handles to this tensor's impl (0 when undefined). Together with
  // storage().use_count() (impls, i.e. views, on the same memory) it tells autograd whether a
  // gradient it is about to write in place can be seen through any other tensor.
  long use_count() const { return impl_.use_count(); }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Buffer> storage;
  int64_t offset = 0;
  Shape shape;
  Shape strides;
  DType dtype = DType::f32;
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
};

// Tensors with names, in a meaningful order: state dicts, checkpoint and safetensors contents.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

std::string tensor_str(const Tensor& t);  // "f32[2, 3] on cpu", for messages

// Views of memory: whether a and b are the very same view (storage, offset, dtype, shape and
// strides), and whether their elements can share bytes (same storage and overlapping byte
// ranges; undefined and empty tensors overlap nothing). In-place writes use these to tell an
// update of the very same view from an overlap in part.
bool same_view(const Tensor& a, const Tensor& b);
bool memory_overlaps(const Tensor& a, const Tensor& b);

// Checks used by ops, with messages that name the op and the argument.
void check_same_shape(const Tensor& a, const Tensor& b, const char* op);
void check_dtype(const Tensor& t, DType d, const char* op, const char* arg);
void check_defined(const Tensor& t, const char* op, const char* arg);

}  // namespace tranq
