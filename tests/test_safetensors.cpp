#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/safetensors.h"

using namespace tranq;
namespace fs = std::filesystem;

namespace {

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / fmt::format("tranq_test_st_{}_{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<std::string> listing() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  fs::path dir_;
};

std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file made of the given header (its length prefixed) and data bytes.
std::string raw_file(const std::string& header, const std::string& data) {
  return u64le(header.size()) + header + data;
}

template <class E>
void expect_error(const std::string& file, const std::string& needle) {
  try {
    load_safetensors(file);
    ADD_FAILURE() << "no error for " << needle;
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(file), std::string::npos) << "message must name the file: " << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type for " << needle << ": " << e.what();
  }
}

}  // namespace

TEST_F(Safetensors, RoundTripEveryDtypeScalarEmptyAndMetadata) {
  NamedTensors in = {
      {"conv.weight", Tensor::from_vector<float>({1.5f, -2.25f, 3e-8f, 4, 5, 6}, {2, 3})},
      {"f64", Tensor::from_vector<double>({1.0 / 3.0, -1e300, 0.0}, {3})},
      {"i8", Tensor::from_vector<int8_t>({-128, -1, 0, 127}, {4})},
      {"u8", Tensor::from_vector<uint8_t>({0, 1, 254, 255}, {2, 2})},
      {"i32", Tensor::from_vector<int32_t>({-2147483647 - 1, 7, 2147483647}, {3})},
      {"i64", Tensor::from_vector<int64_t>({int64_t{1} << 62, -5}, {2})},
      {"scalar", Tensor::full({}, 42.5, DType::f32)},
      {"empty", Tensor::zeros({0, 3}, DType::f32)},
      {"after_empty", Tensor::from_vector<int32_t>({9}, {1})},
      // A strided view is written as its logical, contiguous contents.
      {"transposed", Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 1)},
  };
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "ünïcode \"q\""}};
  const std::string file = path("all.safetensors");
  save_safetensors(file, in, meta);
  EXPECT_EQ(listing(), std::vector<std::string>{"all.safetensors"}) << "no temporary file left";

  SafetensorsContent out = load_safetensors(file);
  EXPECT_EQ(out.metadata, meta);
  ASSERT_EQ(out.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const Tensor &a = in[i].second, &b = out.tensors[i].second;
    EXPECT_EQ(out.tensors[i].first, in[i].first) << "the saved order is kept";
    EXPECT_EQ(b.dtype(), a.dtype()) << in[i].first;
    EXPECT_EQ(b.shape(), a.shape()) << in[i].first;
    EXPECT_TRUE(b.is_contiguous());
    Tensor ac = a.contiguous();
    ASSERT_EQ(b.nbytes(), ac.nbytes());
    if (b.nbytes() > 0) {
      EXPECT_EQ(std::memcmp(b.raw_data(), ac.raw_data(), b.nbytes()), 0) << in[i].first;
    }
  }
  EXPECT_EQ(out.tensors[9].second.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(out.tensors[6].second.item(), 42.5);
  EXPECT_EQ(out.tensors[7].second.shape(), (Shape{0, 3}));

  // The data buffer starts 8-byte aligned (the header is padded with spaces).
  const std::string bytes = read_file(file);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes[8 + n - 1] == ' ' || bytes[8 + n - 1] == '}', true);

  // Nothing at all, and an overwrite of an existing file.
  save_safetensors(file, {});
  SafetensorsContent none = load_safetensors(file);
  EXPECT_TRUE(none.tensors.empty());
  EXPECT_TRUE(none.metadata.empty());
  EXPECT_EQ(read_file(file), u64le(8) + "{}      ");
}

TEST_F(Safetensors, ExactBytesOfATinyFile) {
  const std::string file = path("tiny.safetensors");
  save_safetensors(file,
                   {{"a", Tensor::from_vector<float>({1.0f, -2.0f}, {2})},
                    {"b", Tensor::full({}, 7, DType::u8)}},
                   {{"k", "v"}});
  // 130 header bytes padded with 6 spaces to 136 = 0x88; f32 1 = 00 00 80 3f, -2 = 00 00 00 c0.
  const std::string header =
      "{\"__metadata__\":{\"k\":\"v\"},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[8,9]}}      ";
  const std::string expected = std::string("\x88\0\0\0\0\0\0\0", 8) + header +
                               std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0\x07", 9);
  EXPECT_EQ(read_file(file), expected);
}

TEST_F(Safetensors, CorruptFilesGiveFormatErrorNamingTheFile) {
  const std::string f32x2 = std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
  auto write = [&](const std::string& name, const std::string& bytes) {
    const std::string p = path(name);
    write_file_atomic(p, bytes);
    return p;
  };
  expect_error<FormatError>(write("short", "\x05\0\0"), "truncated");
  expect_error<FormatError>(write("headerlen", u64le(1000) + "{}"), "header length 1000");
  expect_error<FormatError>(write("badjson", raw_file("{\"a\": [", "")), "not valid JSON");
  expect_error<FormatError>(write("notobject", raw_file("[1, 2]", "")), "not a JSON object");
  expect_error<FormatError>(
      write("range", raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", f32x2)),
      "runs past");
  expect_error<FormatError>(
      write("overlap", raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                f32x2)),
      "overlaps");
  expect_error<FormatError>(
      write("hole", raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f32x2)),
      "belong to no tensor");
  expect_error<FormatError>(
      write("reversed",
            raw_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", f32x2)),
      "end before");
  expect_error<FormatError>(
      write("size", raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2)),
      "needs 12 bytes");
  expect_error<FormatError>(
      write("dtype", raw_file(R"({"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}})", f32x2)),
      "BF16");
  expect_error<FormatError>(
      write("negshape",
            raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2)),
      "non-negative");
  expect_error<FormatError>(
      write("nooffsets", raw_file(R"({"a":{"dtype":"F32","shape":[2]}})", f32x2)), "data_offsets");
  expect_error<FormatError>(write("meta", raw_file(R"({"__metadata__":{"k":1}})", "")),
                            "metadata 'k' is not a string");
  // Deep nesting (200,000 levels in 400 kB) is refused while parsing: printing it in the shape
  // error used to recurse once per level and overflow the stack.
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  expect_error<FormatError>(
      write("deep",
            raw_file(R"({"a":{"dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,0]}})", "")),
      "deeper than");
  expect_error<FormatError>(
      write("deepoff",
            raw_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":)" + deep + "}}", "")),
      "deeper than");

  // A good file cut short loses the end of its data.
  const std::string good = path("good");
  save_safetensors(good, {{"x", Tensor::zeros({4}, DType::f64)}});
  std::string bytes = read_file(good);
  expect_error<FormatError>(write("cut", bytes.substr(0, bytes.size() - 3)), "runs past");
}

TEST_F(Safetensors, ShapeSizeCheckIgnoresZeroDimsButNotHugeOnes) {
  auto write = [&](const std::string& name, const std::string& bytes) {
    const std::string p = path(name);
    write_file_atomic(p, bytes);
    return p;
  };
  // Holds no bytes, but [0, 2^63-1, 2^63-1] overflows as soon as strides are computed; the
  // product used to stop being checked once it hit 0.
  expect_error<FormatError>(
      write("zero_first",
            raw_file(R"({"a":{"dtype":"U8","shape":[0,9223372036854775807,9223372036854775807],)"
                     R"("data_offsets":[0,0]}})",
                     "")),
      "too large");
  expect_error<FormatError>(
      write("zero_last", raw_file(R"({"a":{"dtype":"U8","shape":[9223372036854775807,2,0],)"
                                  R"("data_offsets":[0,0]}})",
                                  "")),
      "too large");
  // The bytes of the non-zero dims count, not just the elements: 2^62 f32 values.
  expect_error<FormatError>(
      write("bytes", raw_file(R"({"a":{"dtype":"F32","shape":[0,4611686018427387904],)"
                              R"("data_offsets":[0,0]}})",
                              "")),
      "too large");
  // Huge but representable next to a zero dim: an empty tensor of that shape.
  SafetensorsContent ok = load_safetensors(
      write("fits", raw_file(R"({"a":{"dtype":"U8","shape":[0,4611686018427387904],)"
                             R"("data_offsets":[0,0]}})",
                             "")));
  ASSERT_EQ(ok.tensors.size(), 1u);
  EXPECT_EQ(ok.tensors[0].second.shape(), (Shape{0, int64_t{1} << 62}));
  EXPECT_EQ(ok.tensors[0].second.numel(), 0);
}

TEST_F(Safetensors, MissingFileIsIoError) {
  expect_error<IoError>(path("nope.safetensors"), "nope.safetensors");
  expect_error<IoError>(dir_.string(), "Is a directory");
  EXPECT_THROW(read_file(path("nope")), IoError);
  EXPECT_THROW(read_file(dir_.string()), IoError);
}

TEST_F(Safetensors, FailedSaveLeavesNoFile) {
  const std::string missing_dir = path("no/such/dir/w.safetensors");
  try {
    save_safetensors(missing_dir, {{"x", Tensor::zeros({2})}});
    ADD_FAILURE();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(missing_dir), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(missing_dir));
  // The rename fails when the target is a directory: the temporary file must be gone.
  fs::create_directories(dir_ / "target");
  EXPECT_THROW(save_safetensors(path("target"), {{"x", Tensor::zeros({2})}}), IoError);
  EXPECT_THROW(write_file_atomic(path("target"), "abc"), IoError);
  EXPECT_EQ(listing(), std::vector<std::string>{"target"});
  EXPECT_TRUE(fs::is_directory(dir_ / "target"));
}

TEST_F(Safetensors, BadTensorListsAreValueErrors) {
  const std::string file = path("x.safetensors");
  EXPECT_THROW(save_safetensors(file, {{"a", Tensor::zeros({1})}, {"a", Tensor::zeros({1})}}),
               ValueError);
  EXPECT_THROW(save_safetensors(file, {{"__metadata__", Tensor::zeros({1})}}), ValueError);
  EXPECT_THROW(save_safetensors(file, {{"u", Tensor()}}), ValueError);
  EXPECT_THROW(save_safetensors(file, {{std::string("\xff\xfe", 2), Tensor::zeros({1})}}),
               ValueError);
  EXPECT_TRUE(listing().empty());
}

TEST_F(Safetensors, AtomicWriteReplacesWholeFile) {
  const std::string file = path("f.bin");
  const std::string binary("a\0b\xff", 4);
  write_file_atomic(file, binary);
  EXPECT_EQ(read_file(file), binary);
  write_file_atomic(file, "short");
  EXPECT_EQ(read_file(file), "short");
  write_file_atomic(file, "");
  EXPECT_EQ(read_file(file), "");
  EXPECT_EQ(listing(), std::vector<std::string>{"f.bin"});
  AtomicFileWriter abandoned(path("g.bin"));
  abandoned.write("xyz", 3);
  EXPECT_TRUE(fs::exists(path("g.bin") + ".tmp." + std::to_string(::getpid())));
  EXPECT_FALSE(fs::exists(path("g.bin"))) << "nothing under the target before commit";
}

TEST_F(Safetensors, AbandonedWriterRemovesItsTemporaryFile) {
  {
    AtomicFileWriter w(path("g.bin"));
    w.write("xyz", 3);
  }
  EXPECT_TRUE(listing().empty());
}
