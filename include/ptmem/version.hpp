#pragma once
namespace ptmem {
inline constexpr const char* kVersion = "0.2.0";
}
