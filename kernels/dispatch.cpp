#include "kernels/dispatch.h"

#include <utility>

namespace tranq::kernels {

void unsupported_device(const char* op, const Tensor& t) {
  TRANQ_THROW(DeviceError, "op '{}' has no implementation for {} tensors (got {})", op,
              t.device().str(), tensor_str(t));
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

bool same_view(const Tensor& a, const Tensor& b) {
  return a.offset() == b.offset() && a.dtype() == b.dtype() && a.shape() == b.shape() &&
         a.strides() == b.strides();
}

}  // namespace

void check_no_partial_overlap(const char* op, const Tensor& out,
                              std::initializer_list<const Tensor*> inputs) {
  if (!out.defined() || out.numel() == 0 || !out.storage()) return;
  const auto o = byte_span(out);
  for (const Tensor* in : inputs) {
    if (!in->defined() || in->numel() == 0 || in->storage() != out.storage()) continue;
    if (same_view(*in, out)) continue;
    const auto i = byte_span(*in);
    TRANQ_CHECK(i.second < o.first || o.second < i.first,
                "{}: the output {} overlaps an input {} in part; write to a separate tensor "
                "(or clone() the input) or pass the input itself to update it in place",
                op, tensor_str(out), tensor_str(*in));
  }
}

}  // namespace tranq::kernels
