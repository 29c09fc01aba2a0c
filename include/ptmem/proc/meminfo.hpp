// System-wide figures for the stats header: /proc/meminfo and /proc/loadavg.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ptmem::proc {

struct MemInfo {
  std::optional<uint64_t> mem_total_kb, mem_available_kb, swap_total_kb, swap_free_kb;
  /// SwapTotal - SwapFree, when both are known and consistent.
  std::optional<uint64_t> swap_used_kb() const;
};
MemInfo parse_meminfo(std::string_view text);
std::optional<MemInfo> read_meminfo(const std::string& root = "/proc");

/// The 4th field of /proc/loadavg, "running/total": total is every thread (kernel
/// scheduling entity) in the system, counted by the kernel at no cost to us.
std::optional<uint64_t> parse_loadavg_threads(std::string_view text);
std::optional<uint64_t> read_loadavg_threads(const std::string& root = "/proc");

}  // namespace ptmem::proc
