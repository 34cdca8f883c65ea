#include "apps/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace tranq::app {

Progress::Progress() : tty_(isatty(fileno(stderr)) != 0) {}

void Progress::update(int64_t epoch, int64_t epochs, int64_t batch, int64_t batches, double loss,
                      double acc, double images_per_s, bool log_step) {
  if (tty_) {
    auto now = std::chrono::steady_clock::now();
    if (batch + 1 < batches && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 30;
    int filled = static_cast<int>(kWidth * (batch + 1) / std::max<int64_t>(batches, 1));
    fmt::print(stderr, "\repoch {}/{} [{}{}] {}/{} loss {:.4f} acc {:.2f}% {:.0f} img/s\x1b[K",
               epoch + 1, epochs, std::string(filled, '#'), std::string(kWidth - filled, '.'),
               batch + 1, batches, loss, 100 * acc, images_per_s);
    std::fflush(stderr);
  } else if (log_step) {
    fmt::print(stderr, "epoch {}/{} batch {}/{} loss {:.4f} acc {:.2f}% {:.0f} img/s\n", epoch + 1,
               epochs, batch + 1, batches, loss, 100 * acc, images_per_s);
  }
}

void Progress::finish_epoch(const std::string& line) {
  if (tty_) fmt::print(stderr, "\r\x1b[K");
  fmt::print(stderr, "{}\n", line);
}

}  // namespace tranq::app
