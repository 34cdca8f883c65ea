#include "core/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

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

// Float to integer static_cast is undefined for NaN and out-of-range values; this one is not:
// NaN -> 0, saturation at the integer range, truncation toward zero in between.
template <class D, class S>
D convert_value(S v) {
  if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    const double x = static_cast<double>(v);
    if (std::isnan(x)) return D{0};
    constexpr double lo = static_cast<double>(std::numeric_limits<D>::min());  // 0 or -2^k: exact
    constexpr double hi =
        static_cast<double>(std::numeric_limits<D>::max() / 2 + 1) * 2.0;  // max+1
    if (x <= lo) return std::numeric_limits<D>::min();
    if (x >= hi) return std::numeric_limits<D>::max();
    return static_cast<D>(x);
  } else {
    return static_cast<D>(v);
  }
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

template <class F>
void dispatch_dtype(DType t, F&& f) {
  switch (t) {
    case DType::f32:
      f(float{});
      break;
    case DType::f64:
      f(double{});
      break;
    case DType::i8:
      f(int8_t{});
      break;
    case DType::u8:
      f(uint8_t{});
      break;
    case DType::i32:
      f(int32_t{});
      break;
    case DType::i64:
      f(int64_t{});
      break;
  }
}

// Visits every element of a (possibly strided) tensor in row-major order, passing the byte
// offsets into both tensors' data.
void strided_copy_cpu(const Tensor& dst, const Tensor& src) {
  const size_t es = dtype_size(dst.dtype());
  auto* d = static_cast<char*>(dst.raw_data());
  const auto* s = static_cast<const char*>(src.raw_data());
  if (dst.is_contiguous() && src.is_contiguous()) {
    if (dst.nbytes() > 0) std::memcpy(d, s, dst.nbytes());  // empty tensors may have no memory
    return;
  }
  const int64_t nd = dst.dim(), n = dst.numel();
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t od = 0, os = 0;
    for (int64_t k = 0; k < nd; ++k) {
      od += idx[k] * dst.strides()[k];
      os += idx[k] * src.strides()[k];
    }
    std::memcpy(d + od * es, s + os * es, es);
    for (int64_t k = nd - 1; k >= 0; --k) {
      if (++idx[k] < dst.shape()[k]) break;
      idx[k] = 0;
    }
  }
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

namespace {

// A host tensor viewing a host copy of t's whole storage with t's offset, shape and strides.
Tensor host_mirror(const Tensor& t) {
  const Buffer& buf = *t.impl()->storage;
  auto impl = std::make_shared<TensorImpl>(*t.impl());
  impl->storage = std::make_shared<Buffer>(buf.bytes(), Device::cpu());
  impl->requires_grad = false;
  impl->grad = Tensor();
  impl->grad_fn = nullptr;
  backend_for(t.device().type)
      .copy(impl->storage->data(), Device::cpu(), buf.data(), t.device(), buf.bytes());
  return Tensor(impl);
}

}  // namespace

uint64_t Tensor::version() const {
  return defined() && impl_->storage ? impl_->storage->version() : 0;
}

void Tensor::bump_version() const {
  if (defined() && impl_->storage) impl_->storage->bump_version();
}

void Tensor::copy_(const Tensor& src) const {
  TRANQ_CHECK(src.shape() == shape() && src.dtype() == dtype(),
              "copy_: source {} does not match {}", tensor_str(src), tensor_str(*this));
  bump_version();
  if (device().is_cpu() && src.device().is_cpu()) {
    strided_copy_cpu(*this, src);
    return;
  }
  if (!is_contiguous() || !src.is_contiguous()) {
    // Backends copy contiguous bytes only: a strided view on a device goes through a host
    // mirror of its whole storage. Slow, but views that device ops cannot take are rare.
    const Tensor hsrc = src.device().is_cpu() ? src : host_mirror(src);
    if (is_contiguous()) {
      copy_(hsrc.contiguous());
      return;
    }
    const Tensor hdst = host_mirror(*this);
    strided_copy_cpu(hdst, hsrc);
    const Buffer& dev_buf = *impl_->storage;
    backend_for(device().type)
        .copy(dev_buf.data(), device(), hdst.impl()->storage->data(), Device::cpu(),
              dev_buf.bytes());
    return;
  }
  DeviceType t = device().is_cpu() ? src.device().type : device().type;
  backend_for(t).copy(raw_data(), device(), src.raw_data(), src.device(), nbytes());
}

void Tensor::copy_(const Tensor& src, bool non_blocking) const {
  if (!non_blocking || device().is_cpu() || !src.device().is_cpu() || !is_contiguous() ||
      !src.is_contiguous()) {
    copy_(src);
    return;
  }
  TRANQ_CHECK(src.shape() == shape() && src.dtype() == dtype(),
              "copy_: source {} does not match {}", tensor_str(src), tensor_str(*this));
  bump_version();
  if (nbytes() > 0)
    backend_for(device().type)
        .copy_from_pinned_async(raw_data(), device(), src.raw_data(), nbytes());
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor src = contiguous();
  Tensor out = empty(shape(), dtype(), dev);
  out.copy_(src);
  return out;
}

Tensor Tensor::to(Device dev, bool non_blocking) const {
  if (!non_blocking || dev == device() || !device().is_cpu() || dev.is_cpu() || !is_contiguous())
    return to(dev);
  Tensor out = empty(shape(), dtype(), dev);
  if (nbytes() > 0)
    backend_for(dev.type).copy_from_pinned_async(out.raw_data(), dev, raw_data(), nbytes());
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  TRANQ_CHECK(device().is_cpu(), "dtype conversion runs on the CPU; got {}", tensor_str(*this));
  Tensor src = contiguous();
  Tensor out = empty(shape(), dt);
  const int64_t n = numel();
  dispatch_dtype(dtype(), [&](auto s) {
    using S = decltype(s);
    const S* in = src.data<S>();
    dispatch_dtype(dt, [&](auto d) {
      using D = decltype(d);
      D* o = out.data<D>();
      for (int64_t i = 0; i < n; ++i) o[i] = convert_value<D>(in[i]);
    });
  });
  return out;
}

void Tensor::fill_(double value) const {
  bump_version();
  if (value == 0.0 && is_contiguous()) {
    backend_for(device().type).fill_zero(raw_data(), device(), nbytes());
    return;
  }
  if (!device().is_cpu()) {
    if (is_contiguous()) {  // one element made on the host, repeated by the device
      const Tensor one = full({1}, value, dtype());
      backend_for(device().type)
          .fill_pattern(raw_data(), device(), one.raw_data(), dtype_size(dtype()),
                        static_cast<size_t>(numel()));
    } else {
      copy_(full(shape(), value, dtype()).to(device()));
    }
    return;
  }
  dispatch_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (is_contiguous()) {
      T* p = data<T>();
      const int64_t n = numel();
      const T v = convert_value<T>(value);
      for (int64_t i = 0; i < n; ++i) p[i] = v;
    } else {
      copy_(full(shape(), value, dtype()));
    }
  });
}

void Tensor::zero_() const {
  fill_(0.0);
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

double Tensor::item() const {
  TRANQ_CHECK(numel() == 1, "item() needs a one-element tensor, got {}", tensor_str(*this));
  Tensor c = to(Device::cpu());
  double v = 0;
  dispatch_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    v = static_cast<double>(*c.data<T>());
  });
  return v;
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
