#pragma once
// Resampling and crop geometry for the JPEG-folder pipeline, equal in meaning to PIL's
// Image.resize(BILINEAR) and to torchvision's RandomResizedCrop / Resize + CenterCrop.
#include <cstdint>

#include "core/rng.h"

namespace tranq::data {

// A region of an image in source pixels; pixel i covers [i, i + 1).
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};
// The same with fractional edges (a box mapped onto a DCT-scaled decode, or the exact eval box).
struct BoxF {
  double top = 0, left = 0, height = 0, width = 0;
};

// Which source pixels the filter may read near the edges of the box:
//   kImage: any pixel of the source, as PIL's Image.resize(size, box=...) does (and as
//           torchvision's Resize of the whole image followed by CenterCrop does);
//   kBox:   only pixels inside the box (its edges rounded to whole pixels), as
//           img.crop(box).resize(size) does, i.e. torchvision's RandomResizedCrop.
enum class ResizeEdge { kImage, kBox };

// Antialiased bilinear resize of `box` of an HWC u8 image (1..4 channels) into dst_h x dst_w HWC
// (dst must not overlap src). Bit-exact with PIL 9's ImagingResample for BILINEAR: the triangle
// filter's support widens by the scale factor when downsampling, coefficients are normalised to
// sum 1 in double, converted to 22-bit fixed point, and each of the two passes (horizontal into
// an 8-bit temporary, then vertical) rounds to 8 bits. Deterministic, single-threaded.
// resize_bilinear is Image.resize((dst_w, dst_h), BILINEAR, box=(left, top, right, bottom)).
// Throws ValueError unless the box lies inside the image with positive size.
void resize_bilinear(const uint8_t* src, int64_t src_h, int64_t src_w, int64_t channels,
                     const CropBox& box, uint8_t* dst, int64_t dst_h, int64_t dst_w);
void resize_bilinear_box(const uint8_t* src, int64_t src_h, int64_t src_w, int64_t channels,
                         const BoxF& box, ResizeEdge edge, uint8_t* dst, int64_t dst_h,
                         int64_t dst_w);

// torchvision.transforms.RandomResizedCrop.get_params (0.14), with Python's round-half-even.
// Draw order: for each of at most 10 attempts, rng.uniform(scale_lo, scale_hi) for the area
// fraction, then rng.uniform(log(ratio_lo), log(ratio_hi)) for the log aspect ratio; on the
// first accepted attempt rng.below(height - h + 1) for top, then rng.below(width - w + 1) for
// left. The fallback (no attempt fits) draws nothing more: the centred crop of the whole image
// with its aspect ratio clamped to [ratio_lo, ratio_hi] (its short side kept >= 1 pixel, where
// torchvision could return an empty crop). Throws ValueError unless height, width > 0,
// 0 <= scale_lo <= scale_hi, scale_hi > 0 and 0 < ratio_lo <= ratio_hi.
CropBox random_resized_crop_box(int64_t height, int64_t width, Rng& rng, double scale_lo = 0.08,
                                double scale_hi = 1.0, double ratio_lo = 3.0 / 4.0,
                                double ratio_hi = 4.0 / 3.0);

// torchvision Resize(resize) (shorter side to `resize`, the longer to int(resize * long / short))
// then CenterCrop(size) (top = int(round((H' - size) / 2.0)), Python rounding), expressed as the
// box of the ORIGINAL image that maps onto the size x size output, so that decode + one resample
// replaces torchvision's resample + crop. Requires resize >= size (no padding).
//
// eval_crop_box_exact gives the box with fractional edges: top = top' * H / H', height =
// size * H / H' (likewise for x). Resampling it with ResizeEdge::kImage puts every output pixel's
// filter centre, support and taps exactly where torchvision's two-step resample puts them (the
// crop after the resize is whole-pixel), so the two agree up to floating-point rounding of the
// centres (at most 1 in rare pixels). eval_crop_box rounds each edge of that box to the nearest
// pixel (clamped to the image): a shift of at most half a source pixel and a scale change of at
// most 1 / size, sub-pixel, but enough to change many output values by a level or two.
CropBox eval_crop_box(int64_t height, int64_t width, int64_t resize, int64_t size);
BoxF eval_crop_box_exact(int64_t height, int64_t width, int64_t resize, int64_t size);

}  // namespace tranq::data
