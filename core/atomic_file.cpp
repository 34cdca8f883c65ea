#include "core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/error.h"

namespace tranq {
namespace {

std::string errno_str(int e) {
  return std::strerror(e);
}

std::string parent_dir(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  TRANQ_CHECK(!path_.empty(), "write_file_atomic: empty path");
  tmp_path_ = path_ + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) {
    const int e = errno;
    TRANQ_THROW(IoError, "cannot write '{}': creating the temporary file '{}' failed: {}", path_,
                tmp_path_, errno_str(e));
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) discard();
}

void AtomicFileWriter::discard() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!tmp_path_.empty()) {
    ::unlink(tmp_path_.c_str());
    tmp_path_.clear();
  }
}

void AtomicFileWriter::fail(const std::string& what) {
  const int e = errno;
  discard();
  TRANQ_THROW(IoError, "cannot write '{}': {} failed: {}", path_, what, errno_str(e));
}

void AtomicFileWriter::write(const void* data, size_t bytes) {
  TRANQ_CHECK(fd_ >= 0 && !committed_, "AtomicFileWriter for '{}' is closed", path_);
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write");
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  TRANQ_CHECK(fd_ >= 0 && !committed_, "AtomicFileWriter for '{}' is closed", path_);
  if (::fsync(fd_) != 0) fail("fsync of the temporary file");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close of the temporary file");
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) fail("rename over the target");
  committed_ = true;
  tmp_path_.clear();
  // The data is in place; syncing the directory makes the rename durable. A failure here is
  // still reported: the caller asked for a durable write.
  const std::string dir = parent_dir(path_);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    const int e = errno;
    TRANQ_THROW(IoError, "wrote '{}' but cannot open its directory to sync it: {}", path_,
                errno_str(e));
  }
  if (::fsync(dfd) != 0 && errno != EINVAL) {  // EINVAL: the file system cannot sync directories
    const int e = errno;
    ::close(dfd);
    TRANQ_THROW(IoError, "wrote '{}' but syncing its directory failed: {}", path_, errno_str(e));
  }
  ::close(dfd);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFileWriter w(path);
  w.write(bytes.data(), bytes.size());
  w.commit();
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    TRANQ_THROW(IoError, "cannot open '{}' for reading: {}", path, errno_str(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    const int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    TRANQ_THROW(IoError, "cannot read '{}': {}", path, errno_str(e));
  }
  std::string out;
  if (S_ISREG(st.st_mode)) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      TRANQ_THROW(IoError, "reading '{}' failed: {}", path, errno_str(e));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace tranq
