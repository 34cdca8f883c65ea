#include "datasets/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace tranq::data {
namespace {

// PIL's PRECISION_BITS for 8-bit images: 32 - 8 (pixel) - 2 (headroom).
constexpr int kPrecisionBits = 22;

// Filter taps of one axis: output i reads source pixels first[i] .. first[i] + count[i] - 1 with
// weights w[i * ksize ...], in fixed point.
struct Taps {
  int64_t ksize = 0;
  std::vector<int64_t> first;
  std::vector<int64_t> count;
  std::vector<int32_t> w;
};

// PIL's precompute_coeffs + normalize_coeffs_8bpc on the source pixels [lo, hi), with the
// coordinate origin moved to lo so that ResizeEdge::kBox on a whole-pixel box computes exactly
// what PIL computes on the cropped image.
Taps compute_taps(int64_t lo, int64_t hi, double in0, double in1, int64_t out_size) {
  const double in_size = static_cast<double>(hi - lo);
  in0 -= static_cast<double>(lo);
  in1 -= static_cast<double>(lo);
  const double scale = (in1 - in0) / static_cast<double>(out_size);
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 1.0 * filterscale;  // the bilinear (triangle) filter has support 1
  Taps t;
  t.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(static_cast<size_t>(out_size));
  t.count.resize(static_cast<size_t>(out_size));
  t.w.assign(static_cast<size_t>(out_size * t.ksize), 0);
  std::vector<double> k(static_cast<size_t>(t.ksize));
  const double ss = 1.0 / filterscale;
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (static_cast<double>(xx) + 0.5) * scale;
    // (int) truncation as in PIL; negative values are clipped to 0 right after either way.
    int64_t xmin = static_cast<int64_t>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int64_t xmax = static_cast<int64_t>(center + support + 0.5);
    if (static_cast<double>(xmax) > in_size) xmax = hi - lo;
    int64_t n = std::min(xmax - xmin, t.ksize);
    if (n <= 0) {  // a centre outside [lo, hi) (only reachable through float rounding at an edge)
      xmin = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(center), 0), hi - lo - 1);
      n = 1;
    }
    double ww = 0.0;
    for (int64_t x = 0; x < n; ++x) {
      const double arg = std::fabs((static_cast<double>(x + xmin) - center + 0.5) * ss);
      k[x] = arg < 1.0 ? 1.0 - arg : 0.0;
      ww += k[x];
    }
    if (ww == 0.0) {  // cannot happen for a centre inside the range; keep the output defined
      for (int64_t x = 0; x < n; ++x) k[x] = 1.0 / static_cast<double>(n);
      ww = 1.0;
    }
    int32_t* w = &t.w[static_cast<size_t>(xx * t.ksize)];
    for (int64_t x = 0; x < n; ++x) {
      // The weights are never negative, so this is PIL's rounding (int)(0.5 + k * 2^22).
      w[x] = static_cast<int32_t>(0.5 + (k[x] / ww) * (1 << kPrecisionBits));
    }
    t.first[static_cast<size_t>(xx)] = xmin + lo;
    t.count[static_cast<size_t>(xx)] = n;
  }
  return t;
}

inline uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Rows [y0, y1) of src, resampled along x into tmp (y1 - y0 rows of dst_w pixels). Every output
// reads exactly K taps (see pad_taps), so the tap loop has a fixed trip count.
template <int C, int K>
void horizontal_pass(const uint8_t* src, int64_t src_w, int64_t y0, int64_t y1, const Taps& t,
                     uint8_t* tmp, int64_t dst_w) {
  const int64_t ksize = K > 0 ? K : t.ksize;
  const int32_t* weights = t.w.data();
  const int64_t* first = t.first.data();
  for (int64_t y = y0; y < y1; ++y) {
    const uint8_t* row = src + y * src_w * C;
    uint8_t* out = tmp + (y - y0) * dst_w * C;
    for (int64_t xx = 0; xx < dst_w; ++xx) {
      const int32_t* k = weights + xx * ksize;
      const uint8_t* p = row + first[xx] * C;
      int32_t acc[C];
      for (int c = 0; c < C; ++c) acc[c] = 1 << (kPrecisionBits - 1);
      for (int64_t i = 0; i < ksize; ++i) {
        for (int c = 0; c < C; ++c) acc[c] += static_cast<int32_t>(p[i * C + c]) * k[i];
      }
      for (int c = 0; c < C; ++c) out[xx * C + c] = clip8(acc[c]);
    }
  }
}

// Makes every output read exactly ksize pixels: windows that would run past the end of the row
// start earlier, their weights shifted to match (the extra taps weigh 0, which leaves the sums
// unchanged). A row shorter than the kernel (tiny images) gets ksize = row_len, first = 0.
void pad_taps(Taps& t, int64_t row_len) {
  const int64_t K = std::min(t.ksize, row_len);
  std::vector<int32_t> w(t.first.size() * static_cast<size_t>(K), 0);
  for (size_t o = 0; o < t.first.size(); ++o) {
    const int64_t start = std::min(t.first[o], row_len - K);
    const int32_t* from = &t.w[o * static_cast<size_t>(t.ksize)];
    for (int64_t j = 0; j < t.count[o]; ++j) w[o * K + (t.first[o] - start) + j] = from[j];
    t.first[o] = start;
    t.count[o] = K;
  }
  t.w.swap(w);
  t.ksize = K;
}

// in: rows starting at source row `row0`, each `len` bytes; resampled along y into dst.
void vertical_pass(const uint8_t* in, int64_t row0, int64_t len, const Taps& t, uint8_t* dst,
                   int64_t dst_h) {
  std::vector<int32_t> acc(static_cast<size_t>(len));
  for (int64_t yy = 0; yy < dst_h; ++yy) {
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    const int32_t* k = &t.w[static_cast<size_t>(yy * t.ksize)];
    const int64_t first = t.first[static_cast<size_t>(yy)] - row0;
    const int64_t n = t.count[static_cast<size_t>(yy)];
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* row = in + (first + i) * len;
      const int32_t wi = k[i];
      int32_t* a = acc.data();
      for (int64_t j = 0; j < len; ++j) a[j] += static_cast<int32_t>(row[j]) * wi;
    }
    uint8_t* out = dst + yy * len;
    for (int64_t j = 0; j < len; ++j) out[j] = clip8(acc[static_cast<size_t>(j)]);
  }
}

template <int C>
void run_horizontal_k(const uint8_t* src, int64_t src_w, int64_t y0, int64_t y1, const Taps& t,
                      uint8_t* tmp, int64_t dst_w) {
  // The common kernel sizes get a compile-time trip count (2 * ceil(scale) + 1).
  switch (t.ksize) {
    case 3:
      return horizontal_pass<C, 3>(src, src_w, y0, y1, t, tmp, dst_w);
    case 5:
      return horizontal_pass<C, 5>(src, src_w, y0, y1, t, tmp, dst_w);
    case 7:
      return horizontal_pass<C, 7>(src, src_w, y0, y1, t, tmp, dst_w);
    default:
      return horizontal_pass<C, 0>(src, src_w, y0, y1, t, tmp, dst_w);
  }
}

void run_horizontal(int64_t channels, const uint8_t* src, int64_t src_w, int64_t y0, int64_t y1,
                    const Taps& t, uint8_t* tmp, int64_t dst_w) {
  switch (channels) {
    case 1:
      return run_horizontal_k<1>(src, src_w, y0, y1, t, tmp, dst_w);
    case 2:
      return run_horizontal_k<2>(src, src_w, y0, y1, t, tmp, dst_w);
    case 3:
      return run_horizontal_k<3>(src, src_w, y0, y1, t, tmp, dst_w);
    default:
      return run_horizontal_k<4>(src, src_w, y0, y1, t, tmp, dst_w);
  }
}

// The source range the filter may read along one axis.
void edge_range(ResizeEdge edge, double in0, double in1, int64_t size, int64_t* lo, int64_t* hi) {
  if (edge == ResizeEdge::kImage) {
    *lo = 0;
    *hi = size;
    return;
  }
  *lo = std::clamp<int64_t>(static_cast<int64_t>(std::floor(in0 + 0.5)), 0, size - 1);
  *hi = std::clamp<int64_t>(static_cast<int64_t>(std::floor(in1 + 0.5)), *lo + 1, size);
}

// Python's round(): halves go to the even neighbour.
int64_t round_half_even(double x) {
  const double f = std::floor(x);
  const double d = x - f;
  int64_t r = static_cast<int64_t>(f);
  if (d > 0.5 || (d == 0.5 && (r % 2 != 0))) ++r;
  return r;
}

}  // namespace

void resize_bilinear_box(const uint8_t* src, int64_t src_h, int64_t src_w, int64_t channels,
                         const BoxF& box, ResizeEdge edge, uint8_t* dst, int64_t dst_h,
                         int64_t dst_w) {
  TRANQ_CHECK(channels >= 1 && channels <= 4, "resize_bilinear: channels must be 1..4, got {}",
              channels);
  TRANQ_CHECK(src != nullptr && dst != nullptr && src_h > 0 && src_w > 0 && dst_h > 0 && dst_w > 0,
              "resize_bilinear: expected non-empty images, got source {}x{}, target {}x{}", src_h,
              src_w, dst_h, dst_w);
  TRANQ_CHECK(box.top >= 0 && box.left >= 0 && box.height > 0 && box.width > 0 &&
                  box.top + box.height <= static_cast<double>(src_h) &&
                  box.left + box.width <= static_cast<double>(src_w),
              "resize_bilinear: box (top {}, left {}, height {}, width {}) must have positive "
              "size and lie inside the {}x{} image",
              box.top, box.left, box.height, box.width, src_h, src_w);
  int64_t xlo, xhi, ylo, yhi;
  edge_range(edge, box.left, box.left + box.width, src_w, &xlo, &xhi);
  edge_range(edge, box.top, box.top + box.height, src_h, &ylo, &yhi);
  // As PIL: a pass that would map the image onto itself is skipped (it would be exact anyway).
  const bool need_h = !(dst_w == src_w && box.left == 0 && box.width == static_cast<double>(src_w));
  const bool need_v = !(dst_h == src_h && box.top == 0 && box.height == static_cast<double>(src_h));
  const Taps ty = compute_taps(ylo, yhi, box.top, box.top + box.height, dst_h);
  // The source rows the vertical pass reads.
  const int64_t y0 = ty.first.front();
  const int64_t y1 = ty.first.back() + ty.count.back();
  const int64_t C = channels;
  if (!need_h) {
    if (need_v) {
      vertical_pass(src, 0, src_w * C, ty, dst, dst_h);
    } else {
      std::memcpy(dst, src, static_cast<size_t>(src_h * src_w * C));
    }
    return;
  }
  Taps tx = compute_taps(xlo, xhi, box.left, box.left + box.width, dst_w);
  pad_taps(tx, src_w);
  if (!need_v) {
    run_horizontal(C, src, src_w, 0, src_h, tx, dst, dst_w);
    return;
  }
  std::vector<uint8_t> tmp(static_cast<size_t>((y1 - y0) * dst_w * C));
  run_horizontal(C, src, src_w, y0, y1, tx, tmp.data(), dst_w);
  vertical_pass(tmp.data(), y0, dst_w * C, ty, dst, dst_h);
}

void resize_bilinear(const uint8_t* src, int64_t src_h, int64_t src_w, int64_t channels,
                     const CropBox& box, uint8_t* dst, int64_t dst_h, int64_t dst_w) {
  BoxF b;
  b.top = static_cast<double>(box.top);
  b.left = static_cast<double>(box.left);
  b.height = static_cast<double>(box.height);
  b.width = static_cast<double>(box.width);
  resize_bilinear_box(src, src_h, src_w, channels, b, ResizeEdge::kImage, dst, dst_h, dst_w);
}

CropBox random_resized_crop_box(int64_t height, int64_t width, Rng& rng, double scale_lo,
                                double scale_hi, double ratio_lo, double ratio_hi) {
  TRANQ_CHECK(height > 0 && width > 0, "random_resized_crop_box: image {}x{} must be non-empty",
              height, width);
  TRANQ_CHECK(scale_lo >= 0 && scale_lo <= scale_hi && scale_hi > 0,
              "random_resized_crop_box: scale range [{}, {}] must satisfy 0 <= lo <= hi, hi > 0",
              scale_lo, scale_hi);
  TRANQ_CHECK(ratio_lo > 0 && ratio_lo <= ratio_hi,
              "random_resized_crop_box: ratio range [{}, {}] must satisfy 0 < lo <= hi", ratio_lo,
              ratio_hi);
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_lo = std::log(ratio_lo), log_hi = std::log(ratio_hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(scale_lo, scale_hi);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int64_t w = round_half_even(std::sqrt(target_area * aspect));
    const int64_t h = round_half_even(std::sqrt(target_area / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      CropBox b;
      b.height = h;
      b.width = w;
      b.top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(height - h + 1)));
      b.left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(width - w + 1)));
      return b;
    }
  }
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < ratio_lo) {
    h = std::clamp<int64_t>(round_half_even(static_cast<double>(w) / ratio_lo), 1, height);
  } else if (in_ratio > ratio_hi) {
    w = std::clamp<int64_t>(round_half_even(static_cast<double>(h) * ratio_hi), 1, width);
  }
  CropBox b;
  b.height = h;
  b.width = w;
  b.top = (height - h) / 2;
  b.left = (width - w) / 2;
  return b;
}

BoxF eval_crop_box_exact(int64_t height, int64_t width, int64_t resize, int64_t size) {
  TRANQ_CHECK(height > 0 && width > 0, "eval_crop_box: image {}x{} must be non-empty", height,
              width);
  TRANQ_CHECK(size > 0 && resize >= size,
              "eval_crop_box: need 0 < size <= resize (centre crop {} of a resize to {}); a crop "
              "larger than the resized image would need padding",
              size, resize);
  // torchvision's _compute_resized_output_size; the integer division is int() of the quotient.
  const int64_t shorter = std::min(height, width), longer = std::max(height, width);
  const int64_t new_long = resize * longer / shorter;
  const int64_t rh = width <= height ? new_long : resize;
  const int64_t rw = width <= height ? resize : new_long;
  // CenterCrop: int(round((H' - size) / 2.0)).
  const int64_t top = round_half_even(static_cast<double>(rh - size) / 2.0);
  const int64_t left = round_half_even(static_cast<double>(rw - size) / 2.0);
  const double sy = static_cast<double>(height) / static_cast<double>(rh);
  const double sx = static_cast<double>(width) / static_cast<double>(rw);
  BoxF b;
  b.top = static_cast<double>(top) * sy;
  b.left = static_cast<double>(left) * sx;
  b.height = std::min(static_cast<double>(size) * sy, static_cast<double>(height) - b.top);
  b.width = std::min(static_cast<double>(size) * sx, static_cast<double>(width) - b.left);
  return b;
}

CropBox eval_crop_box(int64_t height, int64_t width, int64_t resize, int64_t size) {
  const BoxF f = eval_crop_box_exact(height, width, resize, size);
  CropBox b;
  b.top = std::clamp<int64_t>(static_cast<int64_t>(std::floor(f.top + 0.5)), 0, height - 1);
  b.left = std::clamp<int64_t>(static_cast<int64_t>(std::floor(f.left + 0.5)), 0, width - 1);
  b.height =
      std::clamp<int64_t>(static_cast<int64_t>(std::floor(f.height + 0.5)), 1, height - b.top);
  b.width = std::clamp<int64_t>(static_cast<int64_t>(std::floor(f.width + 0.5)), 1, width - b.left);
  return b;
}

}  // namespace tranq::data
