#pragma once
// Typed exceptions and the checking macros every library file uses. Library code throws;
// only executables (apps/) turn errors into exit codes.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace tranq {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// A caller's mistake: wrong shape, dtype, device or argument value.
class ValueError : public Error {
 public:
  using Error::Error;
};
// A file that cannot be opened, read or written.
class IoError : public Error {
 public:
  using Error::Error;
};
// A file that was read but does not hold what its format promises (truncated, corrupt).
class FormatError : public Error {
 public:
  using Error::Error;
};
// A device that is missing or an op that this device does not implement.
class DeviceError : public Error {
 public:
  using Error::Error;
};

}  // namespace tranq

// TRANQ_CHECK(cond, fmt, args...) throws ValueError naming the failed expression and file:line.
#define TRANQ_CHECK_AS(ExcType, cond, ...)                                              \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      throw ExcType(fmt::format("{} ({}:{}: check '{}' failed)", fmt::format(__VA_ARGS__), \
                                __FILE__, __LINE__, #cond));                            \
    }                                                                                   \
  } while (0)
#define TRANQ_CHECK(cond, ...) TRANQ_CHECK_AS(::tranq::ValueError, cond, __VA_ARGS__)
#define TRANQ_THROW(ExcType, ...) throw ExcType(fmt::format(__VA_ARGS__))
