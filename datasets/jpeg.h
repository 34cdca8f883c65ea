#pragma once
// JPEG reading and writing through libjpeg-turbo (kept out of this header). Decoding produces RGB
// whatever the stored colour space, optionally at 1/2, 1/4 or 1/8 size straight from the DCT
// coefficients, which is several times cheaper than decoding at full size and resizing after.
//
// Errors: libjpeg reports failures through a callback that must not return; here it longjmps back
// to the C++ frame that called libjpeg, which destroys the decompressor and only then throws, so
// no C++ exception ever crosses libjpeg's C frames. Every failure on bad data is a FormatError
// whose message starts with "NAME: " (NAME is the caller's file path). libjpeg's warnings are
// silenced (real data sets hold files with a few stray bytes that every decoder accepts), except
// a premature end of data, which is an error: a truncated file must not train as a grey blur.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tranq::data {

// decode_jpeg refuses images whose stored width * height exceeds this: PIL's
// DecompressionBombError threshold (2 * Image.MAX_IMAGE_PIXELS). A 1.5 KB file may claim
// 65000x65000 pixels, which would cost ~200 MB per decode even at 1/8 scale.
constexpr int64_t kMaxJpegPixels = 178956970;

// The frame header, as stored in the file (before any scaling or colour conversion).
struct JpegHeader {
  int64_t width = 0, height = 0;
  int components = 0;
};
// Reads only the markers up to the first scan. Throws FormatError naming `name` if data is not a
// readable JPEG.
JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& name);

// RGB pixels, HWC, rows of width * 3 bytes.
struct RgbImage {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> pixels;
};

// Decodes to RGB, scaled by 1/scale_denom (1, 2, 4 or 8) in the inverse DCT; the output size is
// libjpeg's ceil(width / scale_denom) x ceil(height / scale_denom). Conversions:
//   grayscale            R = G = B = Y
//   YCbCr (or RGB)       libjpeg's JCS_RGB conversion (ISLOW IDCT, fancy upsampling: the
//                        library defaults, which is also what PIL decodes with)
//   CMYK, YCCK           decoded as JCS_CMYK, then converted as PIL's CMYK -> RGB does. The
//                        stored values are taken to be Adobe-inverted (stored = 255 - ink), the
//                        convention of Photoshop and of every common 4-component writer; PIL
//                        assumes the same whether or not an Adobe marker is present, and so do we.
//                        With stored s: R = s_K - muldiv255(255 - s_C, s_K) (likewise G from s_M,
//                        B from s_Y), muldiv255(a, b) = round(a * b / 255); that is
//                        R ~= s_C * s_K / 255 = (255 - C)(255 - K) / 255 in ink amounts.
// Throws FormatError naming `name` for corrupt or truncated data, an unsupported colour space or
// a stored size over kMaxJpegPixels (checked on the header, before anything is allocated, and
// whatever scale_denom is); ValueError for a bad scale_denom.
RgbImage decode_jpeg(const uint8_t* data, size_t size, int scale_denom, const std::string& name);

// The largest d in {1, 2, 4, 8} with crop_w >= target_w * d and crop_h >= target_h * d, i.e. the
// crop still holds at least target_w x target_h pixels after decoding at 1/d (libjpeg's ceil
// rounding only adds pixels). Decoding small therefore never makes the final resize upsample
// where the full-size decode would not have. All arguments must be positive.
int choose_scale_denom(int64_t crop_w, int64_t crop_h, int64_t target_w, int64_t target_h);

// Baseline JPEG for tests, benchmarks and tools. components: 1 (gray), 3 (RGB, stored as YCbCr
// 4:2:0, libjpeg's defaults) or 4 (CMYK ink amounts, 0 = no ink; written as Adobe-inverted CMYK
// with an Adobe marker, as Photoshop does, so decode_jpeg gives back RGB). pixels: interleaved
// HWC. quality: 1..100. Throws ValueError for bad arguments.
std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int64_t width, int64_t height,
                                 int components, int quality);

}  // namespace tranq::data
