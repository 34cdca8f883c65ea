#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace tranq {

enum class DType : uint8_t { f32, f64, i8, u8, i32, i64 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
// Parses the safetensors spelling ("F32", "I8", ...); throws FormatError for others.
DType dtype_from_safetensors(const std::string& s);
const char* dtype_safetensors_name(DType t);
inline bool is_floating(DType t) { return t == DType::f32 || t == DType::f64; }

template <class T>
struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::f32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::f64; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::i8; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::i32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::i64; };
template <class T>
constexpr DType dtype_of = DTypeOf<T>::value;

}  // namespace tranq
