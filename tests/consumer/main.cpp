// Trains a linear classifier with the installed library, fake-quantizes its weight and saves it:
// every public area a user starts with, through the installed headers only.
#include <cmath>
#include <cstdio>
#include <string>

#include "core/safetensors.h"
#include "kernels/quantize.h"
#include "layers/functional.h"
#include "layers/linear.h"
#include "optim/optimizer.h"
#include "tranq/config.h"

using namespace tranq;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer OUT.safetensors\n");
    return 2;
  }
  try {
    Linear fc(4, 2, true, DType::f32, 7);
    // Class 1 where the first feature is positive.
    Tensor x =
        Tensor::from_vector<float>({1, 0, 0, 0, -1, 0, 0, 0, 2, 1, 0, 0, -2, 0, 1, 0}, {4, 4});
    Tensor y = Tensor::from_vector<int32_t>({1, 0, 1, 0}, {4});
    optim::ParamGroup g;
    g.names = {"weight", "bias"};
    g.params = {fc.weight(), fc.bias()};
    g.lr = 0.5;
    auto opt = optim::make_sgd({g});
    double first = 0, last = 0;
    for (int step = 0; step < 20; ++step) {
      opt->zero_grad();
      Tensor loss = ops::cross_entropy(fc.forward(x), y);
      loss.backward();
      opt->step();
      (step == 0 ? first : last) = loss.item();
    }
    if (!(last < 0.5 * first)) {
      std::fprintf(stderr, "loss did not fall: %g -> %g\n", first, last);
      return 1;
    }
    const kernels::QuantRange r = kernels::weight_range(2);
    Tensor q = Tensor::empty(fc.weight().shape());
    kernels::fake_quantize_forward(fc.weight().detach(), Tensor::full({1}, 1.0), r, q, Tensor());
    for (float v : q.to_vector<float>()) {
      if (v != -1.0f && v != -0.5f && v != 0.0f && v != 0.5f) {
        std::fprintf(stderr, "not a 2-bit level: %g\n", v);
        return 1;
      }
    }
    save_safetensors(argv[1], {{"weight_q", q}}, {{"version", TRANQ_VERSION}});
    std::printf("tranq %s: loss %.4f -> %.4f, cuda backend %d\n", TRANQ_VERSION, first, last,
                TRANQ_WITH_CUDA);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
