#include "apps/convert.h"

#include "apps/run_setup.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "models/registry.h"

namespace tranq::app {

namespace {

// The run's checkpoint keeps the model under "model/"; other files hold it at the top level.
NamedTensors model_tensors(const SafetensorsContent& content, int64_t& dropped) {
  bool prefixed = false;
  for (const auto& [n, t] : content.tensors) prefixed |= n.rfind("model/", 0) == 0;
  NamedTensors out;
  for (const auto& [n, t] : content.tensors) {
    if (!prefixed) {
      out.emplace_back(n, t);
    } else if (n.rfind("model/", 0) == 0) {
      out.emplace_back(n.substr(6), t);
    } else {
      ++dropped;
    }
  }
  return out;
}

const Tensor* find(const NamedTensors& d, const std::string& name) {
  for (const auto& [n, t] : d)
    if (n == name) return &t;
  return nullptr;
}

}  // namespace

ConvertResult convert_weights(const std::string& model_name, const std::string& in,
                              const std::string& out) {
  const SafetensorsContent content = load_safetensors(in);
  TRANQ_CHECK(!content.metadata.count(kIntegerMetaKey),
              "{} is an exported integer model (codes and scales); convert the QAT run's "
              "model.safetensors instead",
              in);
  ConvertResult r;
  const NamedTensors given = model_tensors(content, r.dropped);
  // Input channels and classes: the first conv's weight [out, in, kh, kw] and the classifier,
  // the last 2-d weight of the model's state dict.
  const NamedTensors probe = create_model(model_name, 3, 10, 0)->state_dict();
  const std::string& first = probe.front().first;
  std::string classifier;
  for (const auto& [n, t] : probe)
    if (t.dim() == 2) classifier = n;
  const Tensor* w0 = find(given, first);
  const Tensor* wc = find(given, classifier);
  TRANQ_CHECK(w0 && w0->dim() == 4 && wc && wc->dim() == 2,
              "{} does not hold a {} (no '{}' or '{}'); is --model right?", in, model_name, first,
              classifier);
  r.in_channels = w0->size(1);
  r.classes = wc->size(0);
  auto model = create_model(model_name, r.in_channels, r.classes, 0);
  NamedTensors fp;
  for (const auto& [n, t] : model->state_dict()) {
    const Tensor* src = find(given, n);
    TRANQ_CHECK(src != nullptr, "{} lacks '{}' of {}; is --model right?", in, n, model_name);
    TRANQ_CHECK(src->shape() == t.shape(), "{}: '{}' is {}, {} expects {}", in, n,
                shape_str(src->shape()), model_name, shape_str(t.shape()));
    fp.emplace_back(n, *src);
  }
  r.dropped += static_cast<int64_t>(given.size()) - static_cast<int64_t>(fp.size());
  r.tensors = static_cast<int64_t>(fp.size());
  save_safetensors(out, fp, {});
  return r;
}

}  // namespace tranq::app
