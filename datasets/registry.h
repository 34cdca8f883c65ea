#pragma once
// The standard sets by name: MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100 (where their files live,
// their class counts, customary statistics and default augmentation).
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace tranq::data {

// Reads a standard set from dir. name: "mnist", "fashion-mnist", "cifar10", "cifar100";
// split: "train" or "test". Files looked for:
//   mnist, fashion-mnist: train-images-idx3-ubyte, train-labels-idx1-ubyte,
//     t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each plain or with ".gz" (plain wins
//     when both exist). Images u8 [N, 1, 28, 28] (any other size in the header is a
//     FormatError, in either split), 10 classes.
//   cifar10: data_batch_1.bin .. data_batch_5.bin (train), test_batch.bin (test), in dir or in
//     dir/cifar-10-batches-bin. Records: 1 label byte + 3072 pixel bytes (CHW, 3x32x32).
//   cifar100: train.bin, test.bin in dir or dir/cifar-100-binary. Records: coarse label byte,
//     fine label byte, 3072 pixel bytes; the fine label (100 classes) is used.
// Throws ValueError for an unknown name or split, IoError when a file is missing or unreadable
// (the message names the path and the files expected in dir), FormatError when a file does not
// hold what its format promises (bad magic, truncated, inconsistent counts, label out of range;
// the message names the file and what was expected), also when a split holds no samples.
ImageSet load_dataset(const std::string& name, const std::string& dir, const std::string& split);

// The customary per-channel statistics of each training set (on the [0, 1] scale):
//   fashion-mnist  mean 0.2860                      std 0.3530
//   mnist          mean 0.1307                      std 0.3081
//   cifar10        mean (0.4914, 0.4822, 0.4465)    std (0.2470, 0.2435, 0.2616)
//   cifar100       mean (0.5071, 0.4865, 0.4409)    std (0.2673, 0.2564, 0.2762)
// Throws ValueError for an unknown name.
Normalization standard_normalization(const std::string& name);

// The names load_dataset accepts, in a fixed order.
std::vector<std::string> dataset_names();

// Number of classes of a standard set (10, or 100 for cifar100); throws ValueError if unknown.
int64_t dataset_num_classes(const std::string& name);
// Image channels of a data set: 1 for MNIST and Fashion-MNIST, 3 for CIFAR.
int64_t dataset_channels(const std::string& name);

// The documented default training recipe; the test split (train = false) gets none.
//   mnist:          crop padding 2, no flip (digits are not mirror-symmetric)
//   fashion-mnist:  crop padding 2 + horizontal flip
//   cifar10/100:    crop padding 4 + horizontal flip
// Throws ValueError for an unknown name.
AugmentOptions default_augmentation(const std::string& name, bool train);

}  // namespace tranq::data
