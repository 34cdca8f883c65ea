// torchvision state dicts (exact names and shapes, random values, written as PyTorch's
// safetensors.torch.save_file would) load into tranq's models with nothing missing or
// unexpected; a different classifier head loads with --strict false semantics.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/safetensors.h"
#include "models/registry.h"
#include "torchvision_state_dicts.h"

using namespace tranq;

namespace {

// "name:d0,d1,..." words -> tensors with those shapes and random values (i64 scalars for
// num_batches_tracked, as PyTorch stores them).
NamedTensors torchvision_like(const char* text, uint64_t seed) {
  std::istringstream in(text);
  std::string word;
  NamedTensors out;
  Rng rng(seed);
  while (in >> word) {
    const size_t colon = word.find(':');
    const std::string name = word.substr(0, colon);
    Shape shape;
    std::istringstream dims(word.substr(colon + 1));
    std::string d;
    while (std::getline(dims, d, ','))
      if (!d.empty()) shape.push_back(std::stoll(d));
    if (name.find("num_batches_tracked") != std::string::npos) {
      Tensor t = Tensor::zeros(shape, DType::i64);
      t.data<int64_t>()[0] = 7;
      out.emplace_back(name, t);
      continue;
    }
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
    for (float& x : v) x = static_cast<float>(rng.uniform(-1.0, 1.0));
    out.emplace_back(name, Tensor::from_vector(v, shape));
  }
  return out;
}

std::string temp_file(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

}  // namespace

TEST(Pretrained, TorchvisionStateDictsLoadWithNothingMissingOrUnexpected) {
  const std::vector<std::pair<std::string, const char*>> cases = {
      {"resnet18", kResnet18StateDict},
      {"resnet34", kResnet34StateDict},
      {"mobilenet_v2", kMobilenetV2StateDict}};
  for (const auto& [name, text] : cases) {
    const NamedTensors dict = torchvision_like(text, 1);
    const std::string path = temp_file(name + "_tv.safetensors");
    save_safetensors(path, dict, {});
    auto model = create_model(name, 3, 1000, 0);
    const LoadReport r = model->load_state_dict(load_safetensors(path).tensors, /*strict=*/true);
    EXPECT_TRUE(r.ok()) << name << ": " << r.str();
    // Values arrived where the names say.
    const NamedTensors mine = model->state_dict();
    ASSERT_EQ(mine.size(), dict.size()) << name;
    for (size_t i = 0; i < dict.size(); ++i) {
      ASSERT_EQ(mine[i].first, dict[i].first);
      const Tensor a = mine[i].second.contiguous(), b = dict[i].second.contiguous();
      ASSERT_EQ(a.nbytes(), b.nbytes()) << mine[i].first;
      EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()), 0) << mine[i].first;
    }
    std::filesystem::remove(path);
  }
}

TEST(Pretrained, DifferentHeadNeedsNonStrictLoad) {
  const NamedTensors dict = torchvision_like(kResnet18StateDict, 2);
  auto model = create_model("resnet18", 3, 10, 0);
  const Tensor fc_before = model->state_dict().back().second.clone();  // fc.bias
  try {
    model->load_state_dict(dict, /*strict=*/true);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("fc.weight: expected [10, 512], got [1000, 512]"),
              std::string::npos)
        << e.what();
  }
  const LoadReport r = model->load_state_dict(dict, /*strict=*/false);
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(r.unexpected.empty());
  ASSERT_EQ(r.mismatched.size(), 2u) << r.str();  // fc.weight and fc.bias keep their values
  const NamedTensors mine = model->state_dict();
  const Tensor fc_after = mine.back().second;
  EXPECT_EQ(std::memcmp(fc_before.raw_data(), fc_after.contiguous().raw_data(), fc_before.nbytes()),
            0);
  // The backbone was loaded.
  EXPECT_EQ(std::memcmp(mine.front().second.contiguous().raw_data(),
                        dict.front().second.contiguous().raw_data(), dict.front().second.nbytes()),
            0);
}
