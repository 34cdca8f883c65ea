#pragma once
#include "datasets/dataset.h"
#include "layers/module.h"

namespace tranq::app {

// Number of rows of logits [N,C] whose argmax equals the label (first maximum wins).
int64_t count_correct(const Tensor& logits, const Tensor& labels);

// Top-1 accuracy in [0,1] of the model (put in eval mode, restored after) on a data set,
// normalised with norm, without augmentation.
double evaluate(Module& model, const data::ImageSet& set, const data::Normalization& norm,
                int64_t batch_size, int workers);

}  // namespace tranq::app
