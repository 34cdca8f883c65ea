#include "datasets/jpeg.h"

// jpeglib.h uses FILE and size_t without including their headers.
#include <cstdio>
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <new>

#include "core/error.h"

namespace tranq::data {
namespace {

// libjpeg keeps a pointer to `pub`; the callbacks cast it back to the whole struct.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// level < 0: a warning; >= 0: trace output. Only running out of data is fatal (see jpeg.h).
void on_emit_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "truncated, premature end of data");
    std::longjmp(err->jump, 1);
  }
  cinfo->err->num_warnings++;
}

void on_output_message(j_common_ptr) {}

void install(ErrorManager& err) {
  jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error_exit;
  err.pub.emit_message = on_emit_message;
  err.pub.output_message = on_output_message;
  err.message[0] = '\0';
}

// Everything the setjmp functions below touch lives here, in the caller's frame: after a longjmp
// only this struct (reached through an unmodified pointer) is read, never a local variable of
// the frame that called setjmp, whose value would be indeterminate.
struct Decoder {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  bool created = false;
  std::vector<uint8_t> cmyk_row;
  Decoder() { std::memset(&cinfo, 0, sizeof(cinfo)); }
  // jpeg_destroy_decompress is idempotent, and also releases a decompressor abandoned by
  // longjmp or by an exception such as bad_alloc.
  ~Decoder() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
};

// Creates the decompressor and reads the header. Returns false with err.message set on failure.
// Must be called from inside the caller's setjmp region (libjpeg may longjmp from here).
void start(Decoder* d, const uint8_t* data, size_t size) {
  d->cinfo.err = &d->err.pub;
  jpeg_create_decompress(&d->cinfo);
  d->created = true;
  jpeg_mem_src(&d->cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&d->cinfo, TRUE);
}

bool header_into(Decoder* d, const uint8_t* data, size_t size) {
  install(d->err);
  if (setjmp(d->err.jump)) return false;
  start(d, data, size);
  return true;
}

// PIL's MULDIV255: round(a * b / 255) for a, b in [0, 255].
inline int muldiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

void cmyk_to_rgb(const uint8_t* in, uint8_t* out, int64_t width) {
  for (int64_t x = 0; x < width; ++x, in += 4, out += 3) {
    const int nk = in[3];  // 255 - K in ink amounts
    for (int c = 0; c < 3; ++c) {
      const int v = nk - muldiv255(255 - in[c], nk);
      out[c] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
    }
  }
}

enum class DecodeStatus { kOk, kLibjpegError, kColorSpace, kTooLarge };

DecodeStatus stopped_early(Decoder* d) {
  std::snprintf(d->err.message, sizeof(d->err.message), "the decoder returned no rows");
  return DecodeStatus::kLibjpegError;
}

DecodeStatus decode_into(Decoder* d, const uint8_t* data, size_t size, int denom, RgbImage* out) {
  install(d->err);
  if (setjmp(d->err.jump)) return DecodeStatus::kLibjpegError;
  start(d, data, size);
  jpeg_decompress_struct* c = &d->cinfo;
  // The stored size, not the scaled one: a bomb stays a bomb at 1/8 scale.
  if (static_cast<int64_t>(c->image_width) * c->image_height > kMaxJpegPixels) {
    return DecodeStatus::kTooLarge;
  }
  const J_COLOR_SPACE space = c->jpeg_color_space;
  const bool cmyk = space == JCS_CMYK || space == JCS_YCCK;
  if (!cmyk && space != JCS_GRAYSCALE && space != JCS_YCbCr && space != JCS_RGB) {
    return DecodeStatus::kColorSpace;
  }
  c->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  c->scale_num = 1;
  c->scale_denom = static_cast<unsigned int>(denom);
  jpeg_calc_output_dimensions(c);
  const int64_t w = c->output_width, h = c->output_height;
  out->width = w;
  out->height = h;
  out->pixels.resize(static_cast<size_t>(w * h * 3));
  if (cmyk) d->cmyk_row.resize(static_cast<size_t>(w * 4));
  jpeg_start_decompress(c);
  while (c->output_scanline < c->output_height) {
    uint8_t* row = out->pixels.data() + static_cast<size_t>(c->output_scanline) * w * 3;
    if (cmyk) {
      JSAMPROW rows[1] = {d->cmyk_row.data()};
      if (jpeg_read_scanlines(c, rows, 1) != 1) return stopped_early(d);
      cmyk_to_rgb(d->cmyk_row.data(), row, w);
    } else {
      // Several rows per call: libjpeg hands out up to rec_outbuf_height rows at once.
      JSAMPROW rows[16];
      const int64_t n = std::min<int64_t>(16, h - c->output_scanline);
      for (int64_t i = 0; i < n; ++i) rows[i] = row + i * w * 3;
      if (jpeg_read_scanlines(c, rows, static_cast<JDIMENSION>(n)) == 0) return stopped_early(d);
    }
  }
  jpeg_finish_decompress(c);
  return DecodeStatus::kOk;
}

const char* color_space_name(J_COLOR_SPACE s) {
  switch (s) {
    case JCS_UNKNOWN:
      return "unknown";
    case JCS_GRAYSCALE:
      return "grayscale";
    case JCS_RGB:
      return "RGB";
    case JCS_YCbCr:
      return "YCbCr";
    case JCS_CMYK:
      return "CMYK";
    case JCS_YCCK:
      return "YCCK";
    default:
      return "other";
  }
}

// Encoding writes into a std::vector through a custom destination, so that nothing is malloc'd
// behind our back (jpeg_mem_dest leaks its buffer when compression fails part way).
struct Encoder;
// libjpeg keeps a pointer to `pub`; the callbacks cast it back to reach the encoder.
struct VectorDest {
  jpeg_destination_mgr pub;
  Encoder* owner;
};

struct Encoder {
  jpeg_compress_struct cinfo;
  VectorDest dest;
  ErrorManager err;
  bool created = false;
  std::vector<uint8_t> buffer;
  std::vector<uint8_t> row;
  Encoder() {
    std::memset(&cinfo, 0, sizeof(cinfo));
    std::memset(&dest, 0, sizeof(dest));
  }
  ~Encoder() {
    if (created) jpeg_destroy_compress(&cinfo);
  }
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;
};

Encoder* encoder_of(j_compress_ptr cinfo) {
  return reinterpret_cast<VectorDest*>(cinfo->dest)->owner;
}

// Grows the vector. No exception may cross libjpeg's frames, so an allocation failure becomes a
// libjpeg error, raised after leaving the catch block (longjmp out of a handler would leak the
// exception object).
bool grow(Encoder* e) {
  try {
    e->buffer.resize(e->buffer.empty() ? 65536 : e->buffer.size() * 2);
    return true;
  } catch (const std::bad_alloc&) {
    return false;
  }
}

void dest_init(j_compress_ptr cinfo) {
  Encoder* e = encoder_of(cinfo);
  e->buffer.clear();
  if (!grow(e)) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 1);
  e->dest.pub.next_output_byte = e->buffer.data();
  e->dest.pub.free_in_buffer = e->buffer.size();
}

boolean dest_empty(j_compress_ptr cinfo) {
  // libjpeg calls this only when the whole buffer is used.
  Encoder* e = encoder_of(cinfo);
  const size_t used = e->buffer.size();
  if (!grow(e)) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 2);
  e->dest.pub.next_output_byte = e->buffer.data() + used;
  e->dest.pub.free_in_buffer = e->buffer.size() - used;
  return TRUE;
}

void dest_term(j_compress_ptr cinfo) {
  Encoder* e = encoder_of(cinfo);
  e->buffer.resize(e->buffer.size() - e->dest.pub.free_in_buffer);
}

bool encode_into(Encoder* e, const uint8_t* pixels, int64_t width, int64_t height, int components,
                 int quality) {
  install(e->err);
  if (setjmp(e->err.jump)) return false;
  jpeg_compress_struct* c = &e->cinfo;
  c->err = &e->err.pub;
  jpeg_create_compress(c);
  e->created = true;
  e->dest.owner = e;
  e->dest.pub.init_destination = dest_init;
  e->dest.pub.empty_output_buffer = dest_empty;
  e->dest.pub.term_destination = dest_term;
  c->dest = &e->dest.pub;
  c->image_width = static_cast<JDIMENSION>(width);
  c->image_height = static_cast<JDIMENSION>(height);
  c->input_components = components;
  c->in_color_space = components == 1 ? JCS_GRAYSCALE : (components == 3 ? JCS_RGB : JCS_CMYK);
  // For CMYK input the defaults store CMYK and write an Adobe marker (transform 0).
  jpeg_set_defaults(c);
  jpeg_set_quality(c, quality, TRUE);
  jpeg_start_compress(c, TRUE);
  const size_t stride = static_cast<size_t>(width) * components;
  while (c->next_scanline < c->image_height) {
    const uint8_t* src = pixels + c->next_scanline * stride;
    JSAMPROW row;
    if (components == 4) {
      for (size_t i = 0; i < stride; ++i) e->row[i] = static_cast<uint8_t>(255 - src[i]);
      row = e->row.data();
    } else {
      row = const_cast<uint8_t*>(src);  // libjpeg only reads input rows
    }
    jpeg_write_scanlines(c, &row, 1);
  }
  jpeg_finish_compress(c);
  return true;
}

}  // namespace

JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& name) {
  TRANQ_CHECK(data != nullptr || size == 0, "read_jpeg_header: null data for {} bytes", size);
  Decoder d;
  if (!header_into(&d, data, size)) {
    TRANQ_THROW(FormatError, "{}: not a readable JPEG file: {}", name, d.err.message);
  }
  JpegHeader h;
  h.width = d.cinfo.image_width;
  h.height = d.cinfo.image_height;
  h.components = d.cinfo.num_components;
  return h;
}

RgbImage decode_jpeg(const uint8_t* data, size_t size, int scale_denom, const std::string& name) {
  TRANQ_CHECK(scale_denom == 1 || scale_denom == 2 || scale_denom == 4 || scale_denom == 8,
              "decode_jpeg: scale_denom must be 1, 2, 4 or 8, got {}", scale_denom);
  TRANQ_CHECK(data != nullptr || size == 0, "decode_jpeg: null data for {} bytes", size);
  Decoder d;
  RgbImage img;
  switch (decode_into(&d, data, size, scale_denom, &img)) {
    case DecodeStatus::kOk:
      return img;
    case DecodeStatus::kLibjpegError:
      TRANQ_THROW(FormatError, "{}: corrupt or truncated JPEG file: {}", name, d.err.message);
    case DecodeStatus::kColorSpace:
      TRANQ_THROW(FormatError,
                  "{}: unsupported JPEG colour space '{}' with {} components; expected "
                  "grayscale, YCbCr, RGB, CMYK or YCCK",
                  name, color_space_name(d.cinfo.jpeg_color_space), d.cinfo.num_components);
    case DecodeStatus::kTooLarge:
      TRANQ_THROW(FormatError,
                  "{}: JPEG header claims {}x{} pixels, over the limit of {} pixels (PIL's "
                  "decompression-bomb limit); refused as a likely decompression bomb",
                  name, d.cinfo.image_width, d.cinfo.image_height, kMaxJpegPixels);
  }
  TRANQ_THROW(Error, "decode_jpeg: unreachable");
}

int choose_scale_denom(int64_t crop_w, int64_t crop_h, int64_t target_w, int64_t target_h) {
  TRANQ_CHECK(crop_w > 0 && crop_h > 0 && target_w > 0 && target_h > 0,
              "choose_scale_denom: sizes must be positive, got crop {}x{}, target {}x{}", crop_w,
              crop_h, target_w, target_h);
  for (int d : {8, 4, 2}) {
    if (crop_w >= target_w * d && crop_h >= target_h * d) return d;
  }
  return 1;
}

std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int64_t width, int64_t height,
                                 int components, int quality) {
  TRANQ_CHECK(components == 1 || components == 3 || components == 4,
              "encode_jpeg: components must be 1 (gray), 3 (RGB) or 4 (CMYK), got {}", components);
  TRANQ_CHECK(
      width > 0 && height > 0 && width <= JPEG_MAX_DIMENSION && height <= JPEG_MAX_DIMENSION,
      "encode_jpeg: size {}x{} must be within 1..{}", width, height, JPEG_MAX_DIMENSION);
  TRANQ_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality must be in 1..100, got {}",
              quality);
  TRANQ_CHECK(pixels != nullptr, "encode_jpeg: null pixels");
  Encoder e;
  if (components == 4) e.row.resize(static_cast<size_t>(width) * 4);
  if (!encode_into(&e, pixels, width, height, components, quality)) {
    TRANQ_THROW(Error, "encode_jpeg: libjpeg failed ({})", e.err.message);
  }
  return std::move(e.buffer);
}

}  // namespace tranq::data
