#include "core/tensor.h"

#include <algorithm>
#include <cstring>

#include "core/autograd.h"

namespace tranq {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape flattened_shape(const Shape& s, int64_t start_dim) {
  const int64_t n = std::max<int64_t>(static_cast<int64_t>(s.size()), 1);  // 0-d acts as [1]
  TRANQ_CHECK(start_dim >= -n && start_dim < n,
              "flatten(start_dim={}): out of range for shape {}; start_dim must be in [{}, {}]",
              start_dim, shape_str(s), -n, n - 1);
  if (start_dim < 0) start_dim += n;
  if (s.empty()) return {1};
  Shape out(s.begin(), s.begin() + start_dim);
  // The merged dim is computed, not left as -1: view() cannot infer -1 next to a zero dim.
  out.push_back(shape_numel(Shape(s.begin() + start_dim, s.end())));
  return out;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

std::string tensor_str(const Tensor& t) {
  if (!t.defined()) return "undefined tensor";
  return fmt::format("{}{} on {}", dtype_name(t.dtype()), shape_str(t.shape()), t.device().str());
}

void check_defined(const Tensor& t, const char* op, const char* arg) {
  TRANQ_CHECK(t.defined(), "{}: argument '{}' is an undefined tensor", op, arg);
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
  TRANQ_CHECK(a.shape() == b.shape(), "{}: shapes differ: {} vs {}", op, shape_str(a.shape()),
              shape_str(b.shape()));
}

void check_dtype(const Tensor& t, DType d, const char* op, const char* arg) {
  TRANQ_CHECK(t.dtype() == d, "{}: argument '{}' must be {}, got {}", op, arg, dtype_name(d),
              tensor_str(t));
}

namespace {

// Sets *numel to the element count of a shape with dims >= 0 and returns true when the size in
// bytes of its NON-ZERO dims fits in int64. Zero dims are skipped on purpose: [0, 2^62, 8] holds
// nothing, but a view or a stride of it would multiply the others and overflow.
bool numel_fits(const Shape& shape, size_t elem_size, int64_t* numel) {
  int64_t bytes = static_cast<int64_t>(elem_size);
  bool zero = false;
  for (int64_t d : shape) {
    if (d == 0) {
      zero = true;
    } else if (__builtin_mul_overflow(bytes, d, &bytes)) {
      return false;
    }
  }
  *numel = zero ? 0 : bytes / static_cast<int64_t>(elem_size);
  return true;
}

std::shared_ptr<TensorImpl> make_impl(const Shape& shape, DType dtype, Device device,
                                      Allocator* allocator = nullptr) {
  for (int64_t d : shape) TRANQ_CHECK(d >= 0, "negative dimension in shape {}", shape_str(shape));
  int64_t numel = 0;
  TRANQ_CHECK(numel_fits(shape, dtype_size(dtype), &numel),
              "shape {} is too large for {}: its size in bytes overflows int64", shape_str(shape),
              dtype_name(dtype));
  auto impl = std::make_shared<TensorImpl>();
  const size_t bytes = static_cast<size_t>(numel) * dtype_size(dtype);
  impl->storage = allocator ? std::make_shared<Buffer>(bytes, device, *allocator)
                            : std::make_shared<Buffer>(bytes, device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return impl;
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  return Tensor(make_impl(shape, dtype, device));
}

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype) {
  return Tensor(make_impl(shape, dtype, Device::cpu(), &pinned_allocator()));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.zero_();
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  int64_t n = -1;
  for (int64_t d : shape) TRANQ_CHECK(d >= 0, "negative dimension in shape {}", shape_str(shape));
  TRANQ_CHECK(numel_fits(shape, sizeof(T), &n) && static_cast<int64_t>(values.size()) == n,
              "from_vector: {} values do not fill shape {}", values.size(), shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>);
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}

const Shape& Tensor::shape() const {
  TRANQ_CHECK(impl_, "use of an undefined tensor");
  return impl_->shape;
}
const Shape& Tensor::strides() const {
  return impl_->strides;
}
int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  if (d < 0) d += n;
  TRANQ_CHECK(d >= 0 && d < n, "dimension {} out of range for {}", d, tensor_str(*this));
  return impl_->shape[static_cast<size_t>(d)];
}
int64_t Tensor::numel() const {
  return shape_numel(shape());
}
DType Tensor::dtype() const {
  return impl_->dtype;
}
Device Tensor::device() const {
  return impl_->storage->device();
}
int64_t Tensor::offset() const {
  return impl_->offset;
}
const std::shared_ptr<Buffer>& Tensor::storage() const {
  return impl_->storage;
}

bool Tensor::is_contiguous() const {
  int64_t acc = 1;
  for (size_t i = impl_->shape.size(); i-- > 0;) {
    if (impl_->shape[i] != 1 && impl_->strides[i] != acc) return false;
    acc *= impl_->shape[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  TRANQ_CHECK(impl_, "use of an undefined tensor");
  return static_cast<char*>(impl_->storage->data()) +
         impl_->offset * static_cast<int64_t>(dtype_size(impl_->dtype));
}

template <class T>
T* Tensor::data() const {
  TRANQ_CHECK(impl_, "use of an undefined tensor");
  TRANQ_CHECK(impl_->dtype == dtype_of<T>, "tensor is {}, accessed as {}", tensor_str(*this),
              dtype_name(dtype_of<T>));
  return static_cast<T*>(raw_data());
}

Tensor Tensor::view(const Shape& shape_in) const {
  TRANQ_CHECK(is_contiguous(), "view() needs a contiguous tensor, got a strided {}; use reshape()",
              tensor_str(*this));
  Shape shape = shape_in;
  int64_t infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      TRANQ_CHECK(infer < 0, "view(): only one dimension may be -1 in {}", shape_str(shape_in));
      infer = static_cast<int64_t>(i);
      shape[i] = 1;  // a placeholder while the others are multiplied
    } else {
      TRANQ_CHECK(shape[i] >= 0,
                  "view(): dimension {} of {} is negative; dims must be >= 0, or -1 "
                  "(once) to infer one",
                  i, shape_str(shape_in));
    }
  }
  const size_t es = dtype_size(dtype());
  int64_t known = 0;
  TRANQ_CHECK(numel_fits(shape, es, &known), "view(): cannot view {} as {}: too many elements",
              tensor_str(*this), shape_str(shape_in));
  if (infer >= 0) {
    TRANQ_CHECK(known > 0 && numel() % known == 0, "view(): cannot view {} as {}",
                tensor_str(*this), shape_str(shape_in));
    shape[static_cast<size_t>(infer)] = numel() / known;
  }
  int64_t n = 0;
  TRANQ_CHECK(numel_fits(shape, es, &n) && n == numel(), "view(): cannot view {} as {}",
              tensor_str(*this), shape_str(shape_in));
  auto impl = std::make_shared<TensorImpl>(*impl_);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->grad = Tensor();
  impl->grad_fn = nullptr;
  impl->requires_grad = false;
  return Tensor(impl);
}

Tensor Tensor::reshape(const Shape& shape) const {
  return is_contiguous() ? view(shape) : contiguous().view(shape);
}

Tensor Tensor::flatten(int64_t start_dim) const {
  return reshape(flattened_shape(shape(), start_dim));
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  if (d < 0) d += dim();
  TRANQ_CHECK(d >= 0 && d < dim(), "narrow(): dim {} out of range for {}", d, tensor_str(*this));
  // Written as length <= size - start: start + length could overflow.
  TRANQ_CHECK(start >= 0 && start <= size(d) && length >= 0 && length <= size(d) - start,
              "narrow({}, {}, {}) out of range for {}: need 0 <= start <= {} and 0 <= length <= "
              "{} - start",
              d, start, length, tensor_str(*this), size(d), size(d));
  auto impl = std::make_shared<TensorImpl>(*impl_);
  impl->offset += start * impl_->strides[d];
  impl->shape[d] = length;
  impl->grad = Tensor();
  impl->grad_fn = nullptr;
  impl->requires_grad = false;
  return Tensor(impl);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  if (d < 0) d += dim();
  Tensor n = narrow(d, index, 1);
  n.impl_->shape.erase(n.impl_->shape.begin() + d);
  n.impl_->strides.erase(n.impl_->strides.begin() + d);
  return n;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  if (d0 < 0) d0 += dim();
  if (d1 < 0) d1 += dim();
  TRANQ_CHECK(d0 >= 0 && d0 < dim() && d1 >= 0 && d1 < dim(),
              "transpose({}, {}) out of range for {}", d0, d1, tensor_str(*this));
  auto impl = std::make_shared<TensorImpl>(*impl_);
  std::swap(impl->shape[d0], impl->shape[d1]);
  std::swap(impl->strides[d0], impl->strides[d1]);
  impl->grad = Tensor();
  impl->grad_fn = nullptr;
  impl->requires_grad = false;
  return Tensor(impl);
}

Tensor Tensor::contiguous() const {
  return is_contiguous() ? *this : clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  return out;
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = impl_->offset;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->dtype = impl_->dtype;
  return Tensor(impl);
}

bool Tensor::requires_grad() const {
  return impl_ && impl_->requires_grad;
}

Tensor& Tensor::set_requires_grad(bool value) {
  TRANQ_CHECK(!impl_->grad_fn, "set_requires_grad: only leaf tensors can be set by hand");
  TRANQ_CHECK(!value || is_floating(dtype()), "set_requires_grad: {} is not floating point",
              tensor_str(*this));
  impl_->requires_grad = value;
  return *this;
}

Tensor Tensor::grad() const {
  return impl_->grad;
}
void Tensor::set_grad(const Tensor& g) const {
  impl_->grad = g;
}
void Tensor::zero_grad() const {
  impl_->grad = Tensor();
}
const std::shared_ptr<Node>& Tensor::grad_fn() const {
  return impl_->grad_fn;
}
void Tensor::set_grad_fn(std::shared_ptr<Node> node) const {
  impl_->grad_fn = std::move(node);
  impl_->requires_grad = impl_->grad_fn != nullptr;
}

void Tensor::backward(const Tensor& grad) const {
  run_backward(*this, grad);
}

#define TRANQ_INSTANTIATE(T)                                                   \
  template T* Tensor::data<T>() const;                                         \
  template Tensor Tensor::from_vector<T>(const std::vector<T>&, const Shape&); \
  template std::vector<T> Tensor::to_vector<T>() const;
TRANQ_INSTANTIATE(float)
TRANQ_INSTANTIATE(double)
TRANQ_INSTANTIATE(int8_t)
TRANQ_INSTANTIATE(uint8_t)
TRANQ_INSTANTIATE(int32_t)
TRANQ_INSTANTIATE(int64_t)
#undef TRANQ_INSTANTIATE

}  // namespace tranq
