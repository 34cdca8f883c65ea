#pragma once
// Progress display: a redrawn bar when stderr is a terminal, plain lines otherwise.
#include <chrono>
#include <cstdint>
#include <string>

namespace tranq::app {

class Progress {
 public:
  Progress();
  // Called after every step; draws at most ~10 times a second on a terminal, and prints a
  // plain line every `log_every` steps otherwise.
  void update(int64_t epoch, int64_t epochs, int64_t batch, int64_t batches, double loss,
              double acc, double images_per_s, bool log_step);
  void finish_epoch(const std::string& line);

 private:
  bool tty_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace tranq::app
