#pragma once
#include <string>

namespace tranq {

enum class DeviceType : unsigned char { cpu = 0, cuda = 1 };

// Where a tensor's memory lives. Ops dispatch on it; there is no global device mode.
struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::cuda, i}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
  // "cpu", "cuda", "cuda:1"; throws ValueError otherwise.
  static Device parse(const std::string& s);
};

}  // namespace tranq
