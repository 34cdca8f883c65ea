#pragma once
#include <memory>

#include "datasets/sample_source.h"
#include "layers/module.h"

namespace tranq::app {

struct EvalResult {
  double accuracy = 0;  // top-1, in [0, 1], over the samples that could be read
  int64_t seen = 0;
  std::vector<std::string> skipped;  // unreadable samples ("PATH: reason")
};

// Top-1 accuracy of the model (put in eval mode, restored after) on a source that applies no
// augmentation.
EvalResult evaluate(Module& model, std::shared_ptr<const data::SampleSource> source,
                    int64_t batch_size, int workers);

// Image folders: a note on stderr saying how many files were not read (not .jpg/.jpeg) and
// naming one, so that images of another type are not left out unnoticed. Nothing otherwise.
void note_ignored_files(const data::SampleSource& source);

}  // namespace tranq::app
