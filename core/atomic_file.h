#pragma once
// Whole-file reads and crash-safe writes. A reader of `path` sees either the old file or the
// complete new one, never a torn mix: the bytes go to a temporary file beside it, which is
// fsynced and renamed over `path` (rename is atomic within a directory), then the directory
// is fsynced so the rename itself survives a power cut.
#include <cstddef>
#include <string>

namespace tranq {

// Writes bytes to path atomically: write path + ".tmp.<pid>", fsync, rename over path, fsync dir.
// On any failure the temp file is removed and IoError names the path. No half-written file ever
// exists under `path`. Two threads of one process must not write the same path at once (they
// would share the temporary name).
void write_file_atomic(const std::string& path, const std::string& bytes);

// The whole file; IoError naming the path if it cannot be read (missing, a directory, ...).
std::string read_file(const std::string& path);

// Streaming form of write_file_atomic for large files (checkpoints), so the bytes need not be
// assembled in memory first: write() any number of times, then commit(). Destroying the writer
// without a successful commit() removes the temporary file and leaves `path` untouched.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);  // creates the temporary file; IoError on failure
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t bytes);  // IoError (and the temp file removed) on failure
  void commit();                               // fsync, rename over path, fsync the directory
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const std::string& what);  // cleans up, throws IoError
  void discard() noexcept;
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace tranq
