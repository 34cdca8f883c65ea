// Copies between devices and layouts, dtype conversion and fills.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/autograd.h"
#include "core/tensor.h"

namespace tranq {

namespace {

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

namespace {
// [first, last] byte offsets into the storage that a non-empty view can touch.
std::pair<int64_t, int64_t> byte_span(const Tensor& t) {
  int64_t lo = t.offset(), hi = t.offset();
  for (int64_t d = 0; d < t.dim(); ++d) {
    const int64_t reach = (t.size(d) - 1) * t.strides()[d];
    (reach < 0 ? lo : hi) += reach;
  }
  const int64_t es = static_cast<int64_t>(dtype_size(t.dtype()));
  return {lo * es, hi * es + es - 1};
}
}  // namespace

bool same_view(const Tensor& a, const Tensor& b) {
  return a.defined() && b.defined() && a.storage() == b.storage() && a.offset() == b.offset() &&
         a.dtype() == b.dtype() && a.shape() == b.shape() && a.strides() == b.strides();
}

bool memory_overlaps(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.numel() == 0 || b.numel() == 0 || !a.storage() ||
      a.storage() != b.storage())
    return false;
  const auto x = byte_span(a), y = byte_span(b);
  return !(x.second < y.first || y.second < x.first);
}

void Tensor::copy_(const Tensor& src) const {
  TRANQ_CHECK(src.shape() == shape() && src.dtype() == dtype(),
              "copy_: source {} does not match {}", tensor_str(src), tensor_str(*this));
  check_in_place_write(*this, "copy_");
  if (same_view(*this, src)) return;  // nothing changes
  if (memory_overlaps(*this, src)) {
    // Elements read after others were written over them: copy from a snapshot instead.
    copy_(src.clone());
    return;
  }
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
  check_in_place_write(*this, "copy_");
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
  check_in_place_write(*this, "fill_");
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

}  // namespace tranq
