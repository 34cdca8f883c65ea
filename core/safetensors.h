#pragma once
// Reading and writing the safetensors format (https://github.com/huggingface/safetensors), the
// file format of tranq's weights and checkpoints, so they load directly in PyTorch:
//   8-byte little-endian u64 N | N bytes of JSON header | data buffer
// The header maps each tensor name to {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}
// (offsets relative to the data buffer) and "__metadata__" to a {string: string} object.
#include <map>
#include <string>

#include "core/tensor.h"

namespace tranq {

struct SafetensorsContent {
  NamedTensors tensors;  // in the order of their data in the file (= the order they were saved)
  std::map<std::string, std::string> metadata;
};

// Writes the tensors (in the given order, contiguous, little-endian) atomically (see
// core/atomic_file.h). Device and strided tensors are copied to the CPU first. The header is
// padded with spaces to a multiple of 8 bytes so the data buffer is 8-byte aligned; an empty
// metadata map writes no "__metadata__" entry. ValueError for duplicate or reserved names,
// IoError when the file cannot be written (no file is left behind then).
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Loads every tensor onto the CPU. IoError when the file cannot be read; FormatError naming the
// file when it is truncated, its header is not valid JSON of the expected form, offsets are out
// of range, overlap or leave holes, a byte size differs from shape * dtype size, or a dtype is
// not one tranq has (F32, F64, I8, U8, I32, I64).
SafetensorsContent load_safetensors(const std::string& path);

}  // namespace tranq
