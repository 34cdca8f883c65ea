#include "core/dtype.h"

#include "core/error.h"

namespace tranq {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i8: return 1;
    case DType::u8: return 1;
    case DType::i32: return 4;
    case DType::i64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i8: return "i8";
    case DType::u8: return "u8";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
  }
  return "?";
}

const char* dtype_safetensors_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
  }
  return "?";
}

DType dtype_from_safetensors(const std::string& s) {
  for (DType t : {DType::f32, DType::f64, DType::i8, DType::u8, DType::i32, DType::i64}) {
    if (s == dtype_safetensors_name(t)) return t;
  }
  TRANQ_THROW(FormatError, "unsupported safetensors dtype '{}' (tranq reads F32, F64, I8, U8, I32, I64)", s);
}

}  // namespace tranq
