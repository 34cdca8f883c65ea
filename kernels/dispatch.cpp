#include "kernels/dispatch.h"

#include <utility>

#include "core/autograd.h"

namespace tranq::kernels {

void unsupported_device(const char* op, const Tensor& t) {
  TRANQ_THROW(DeviceError, "op '{}' has no implementation for {} tensors (got {})", op,
              t.device().str(), tensor_str(t));
}

void admit_output(const char* op, const Tensor& out, std::initializer_list<const Tensor*> inputs) {
  for (const Tensor* in : inputs) {
    if (!memory_overlaps(*in, out)) continue;
    TRANQ_CHECK(same_view(*in, out),
                "{}: the output {} overlaps an input {} in part; write to a separate tensor "
                "(or clone() the input) or pass the input itself to update it in place",
                op, tensor_str(out), tensor_str(*in));
  }
  // Every write counts, as torch's out= does: the output may be a tensor a graph saved. A fresh
  // output has no saved references, so counting it changes nothing.
  check_in_place_write(out, op);
  out.bump_version();
}

}  // namespace tranq::kernels
