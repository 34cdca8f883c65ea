#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"

namespace tranq {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors files are little-endian; tranq's reader assumes a little-endian host");

using Json = nlohmann::ordered_json;  // keeps the header in the order tensors were given

constexpr const char* kMetadataKey = "__metadata__";

[[noreturn]] void bad_file(const std::string& path, const std::string& what) {
  TRANQ_THROW(FormatError, "'{}' is not a valid safetensors file: {}", path, what);
}

// An open file descriptor, closed on every path out.
class InFile {
 public:
  explicit InFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      const int e = errno;
      TRANQ_THROW(IoError, "cannot open '{}' for reading: {}", path, std::strerror(e));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      const int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
      ::close(fd_);
      TRANQ_THROW(IoError, "cannot read '{}': {}", path,
                  e ? std::strerror(e) : "not a regular file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
  }
  ~InFile() { ::close(fd_); }
  InFile(const InFile&) = delete;
  InFile& operator=(const InFile&) = delete;

  uint64_t size() const { return size_; }
  void read_at(uint64_t offset, void* dst, uint64_t bytes) const {
    char* p = static_cast<char*>(dst);
    while (bytes > 0) {
      const ssize_t n = ::pread(fd_, p, bytes, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int e = errno;
        TRANQ_THROW(IoError, "reading '{}' failed: {}", path_, std::strerror(e));
      }
      if (n == 0) bad_file(path_, "the file ended early while reading (truncated?)");
      p += n;
      offset += static_cast<uint64_t>(n);
      bytes -= static_cast<uint64_t>(n);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

uint64_t get_u64(const std::string& path, const std::string& name, const Json& v,
                 const char* field) {
  if (!v.is_number_unsigned()) {
    bad_file(path, fmt::format("tensor '{}': {} must hold non-negative integers, got {}", name,
                               field, v.dump()));
  }
  return v.get<uint64_t>();
}

Entry parse_entry(const std::string& path, const std::string& name, const Json& e) {
  if (!e.is_object()) bad_file(path, fmt::format("header entry '{}' is not an object", name));
  for (const char* f : {"dtype", "shape", "data_offsets"}) {
    if (!e.contains(f)) bad_file(path, fmt::format("tensor '{}' lacks '{}'", name, f));
  }
  Entry out;
  out.name = name;
  if (!e["dtype"].is_string())
    bad_file(path, fmt::format("tensor '{}': dtype is not a string", name));
  const std::string dt = e["dtype"].get<std::string>();
  try {
    out.dtype = dtype_from_safetensors(dt);
  } catch (const FormatError& err) {
    bad_file(path, fmt::format("tensor '{}': {}", name, err.what()));
  }
  const Json& shape = e["shape"];
  if (!shape.is_array()) bad_file(path, fmt::format("tensor '{}': shape is not an array", name));
  // Zero dims are left out of the product: [0, 2^63-1, 2^63-1] holds no bytes, but its strides and
  // any view of it multiply the other dims, which must fit in int64 as for Tensor::empty.
  uint64_t bytes = dtype_size(out.dtype);
  bool has_zero = false;
  for (const Json& d : shape) {
    const uint64_t v = get_u64(path, name, d, "shape");
    if (v == 0) {
      has_zero = true;
    } else if (v > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(bytes, v, &bytes) ||
               bytes > static_cast<uint64_t>(INT64_MAX)) {
      bad_file(path, fmt::format("tensor '{}': shape {} is too large", name, shape.dump()));
    }
    out.shape.push_back(static_cast<int64_t>(v));
  }
  if (has_zero) bytes = 0;
  const Json& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2) {
    bad_file(path, fmt::format("tensor '{}': data_offsets must be [begin, end], got {}", name,
                               off.dump()));
  }
  out.begin = get_u64(path, name, off[0], "data_offsets");
  out.end = get_u64(path, name, off[1], "data_offsets");
  if (out.end < out.begin) {
    bad_file(path,
             fmt::format("tensor '{}': data_offsets {} end before they begin", name, off.dump()));
  }
  if (out.end - out.begin != bytes) {
    bad_file(path, fmt::format("tensor '{}': {}{} needs {} bytes but data_offsets {} span {}", name,
                               dt, shape.dump(), bytes, off.dump(), out.end - out.begin));
  }
  return out;
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[kMetadataKey] = std::move(meta);
  }
  std::set<std::string> seen;
  std::vector<Tensor> host;
  host.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    TRANQ_CHECK(name != kMetadataKey, "save_safetensors('{}'): '{}' is reserved, not a tensor name",
                path, name);
    TRANQ_CHECK(seen.insert(name).second, "save_safetensors('{}'): tensor name '{}' appears twice",
                path, name);
    TRANQ_CHECK(t.defined(), "save_safetensors('{}'): tensor '{}' is undefined", path, name);
    Tensor c = t.detach().to(Device::cpu()).contiguous();
    Json shape = Json::array();
    for (int64_t d : c.shape()) shape.push_back(d);
    const uint64_t end = offset + c.nbytes();
    header[name] = Json{{"dtype", dtype_safetensors_name(c.dtype())},
                        {"shape", std::move(shape)},
                        {"data_offsets", Json::array({offset, end})}};
    offset = end;
    host.push_back(std::move(c));
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // e.g. a name that is not valid UTF-8
    TRANQ_THROW(ValueError, "save_safetensors('{}'): cannot encode the header: {}", path, e.what());
  }
  // Readers may mmap the file; padding keeps every tensor of 8-byte elements aligned.
  text.append((8 - text.size() % 8) % 8, ' ');
  unsigned char len[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));

  AtomicFileWriter w(path);
  w.write(len, sizeof len);
  w.write(text.data(), text.size());
  for (const Tensor& c : host) {
    if (c.nbytes() > 0) w.write(c.raw_data(), c.nbytes());
  }
  w.commit();
}

SafetensorsContent load_safetensors(const std::string& path) {
  InFile f(path);
  const uint64_t size = f.size();
  if (size < 8) {
    bad_file(path, fmt::format("truncated: {} bytes, shorter than the 8-byte header length", size));
  }
  unsigned char len[8];
  f.read_at(0, len, 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  if (n > size - 8) {
    bad_file(path,
             fmt::format("header length {} runs past the end of the {}-byte file (truncated?)", n,
                         size));
  }
  std::string text(static_cast<size_t>(n), '\0');
  f.read_at(8, text.data(), n);
  // A valid header nests three levels (header, entry, shape). Deeper nesting is refused while
  // parsing: printing such a value in an error message would recurse once per level.
  constexpr int kMaxDepth = 8;
  const auto depth_limit = [&](int depth, Json::parse_event_t, Json&) {
    if (depth > kMaxDepth)
      bad_file(path, fmt::format("the header nests deeper than {} levels", kMaxDepth));
    return true;
  };
  Json header = Json::parse(text, depth_limit, /*allow_exceptions=*/false);
  if (header.is_discarded()) bad_file(path, "the header is not valid JSON");
  if (!header.is_object()) bad_file(path, "the header is not a JSON object");

  SafetensorsContent out;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) bad_file(path, "__metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) bad_file(path, fmt::format("metadata '{}' is not a string", k));
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, key, value));
  }
  // The tensors must tile the data buffer exactly: no overlap, no holes, nothing past the end.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const uint64_t data_size = size - 8 - n;
  uint64_t expect = 0;
  for (const Entry& e : entries) {
    if (e.end > data_size) {
      bad_file(path, fmt::format("tensor '{}' (bytes {}..{}) runs past the {}-byte data buffer "
                                 "(truncated?)",
                                 e.name, e.begin, e.end, data_size));
    }
    if (e.begin < expect) {
      bad_file(path, fmt::format("tensor '{}' (bytes {}..{}) overlaps the previous tensor", e.name,
                                 e.begin, e.end));
    }
    if (e.begin > expect) {
      bad_file(path,
               fmt::format("bytes {}..{} of the data buffer belong to no tensor", expect, e.begin));
    }
    expect = e.end;
  }
  if (expect != data_size) {
    bad_file(path,
             fmt::format("{} bytes after the last tensor belong to no tensor", data_size - expect));
  }
  out.tensors.reserve(entries.size());
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (t.nbytes() > 0) f.read_at(8 + n + e.begin, t.raw_data(), t.nbytes());
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

}  // namespace tranq
