#include "datasets/file_io.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace tranq::data {
namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const {
    if (f) gzclose(f);
  }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

}  // namespace

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    TRANQ_THROW(IoError, "cannot open '{}': {}", path, std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) TRANQ_THROW(IoError, "cannot read '{}': not a regular file", path);
  // gzopen reads plain files unchanged ("transparent" mode), so one path serves both.
  GzHandle f(gzopen(path.c_str(), "rb"));
  if (!f) TRANQ_THROW(IoError, "cannot open '{}': {}", path, std::strerror(errno ? errno : EIO));
  gzbuffer(f.get(), 1 << 17);
  std::vector<uint8_t> out;
  // Reserve the on-disk size: exact for plain files, a lower bound for compressed ones.
  out.reserve(static_cast<size_t>(st.st_size));
  constexpr unsigned kChunk = 1u << 20;
  size_t used = 0;
  for (;;) {
    if (out.size() < used + kChunk) out.resize(used + kChunk);
    int n = gzread(f.get(), out.data() + used, kChunk);
    if (n < 0) {
      int err = Z_OK;
      const char* msg = gzerror(f.get(), &err);
      if (err == Z_ERRNO) TRANQ_THROW(IoError, "cannot read '{}': {}", path, std::strerror(errno));
      TRANQ_THROW(FormatError, "'{}' is not a valid gzip file: {}", path, msg ? msg : "?");
    }
    used += static_cast<size_t>(n);
    if (n == 0) break;
  }
  int err = Z_OK;
  const char* msg = gzerror(f.get(), &err);
  if (err != Z_OK && err != Z_STREAM_END) {
    // Z_BUF_ERROR: the compressed stream ended before its trailer (a cut-short download).
    TRANQ_THROW(FormatError, "'{}' is a truncated or corrupt gzip file: {}", path, msg ? msg : "?");
  }
  out.resize(used);
  out.shrink_to_fit();
  return out;
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes, bool gzip) {
  if (gzip) {
    GzHandle f(gzopen(path.c_str(), "wb"));
    if (!f)
      TRANQ_THROW(IoError, "cannot create '{}': {}", path, std::strerror(errno ? errno : EIO));
    size_t done = 0;
    while (done < bytes.size()) {
      unsigned n = static_cast<unsigned>(std::min<size_t>(bytes.size() - done, 1u << 20));
      if (gzwrite(f.get(), bytes.data() + done, n) != static_cast<int>(n)) {
        TRANQ_THROW(IoError, "cannot write '{}'", path);
      }
      done += n;
    }
    if (gzclose(f.release()) != Z_OK) TRANQ_THROW(IoError, "cannot finish writing '{}'", path);
    return;
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) TRANQ_THROW(IoError, "cannot create '{}': {}", path, std::strerror(errno));
  size_t n = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
  bool ok = n == bytes.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) TRANQ_THROW(IoError, "cannot write '{}'", path);
}

}  // namespace tranq::data
