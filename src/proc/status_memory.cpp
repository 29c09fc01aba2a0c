#include "ptmem/proc/status_memory.hpp"

#include <charconv>

#include "ptmem/proc/kb_lines.hpp"

namespace ptmem::proc {
namespace {

std::optional<uid_t> second_field_uid(std::string_view value) {
  size_t pos = 0;
  std::string_view field;
  for (int i = 0; i < 2; ++i) {
    while (pos < value.size() && (value[pos] == ' ' || value[pos] == '\t')) ++pos;
    size_t start = pos;
    while (pos < value.size() && value[pos] != ' ' && value[pos] != '\t') ++pos;
    field = value.substr(start, pos - start);
  }
  // The fs uid (4th) follows; requiring a separator rejects a line cut inside the euid.
  if (field.empty() || pos >= value.size()) return std::nullopt;
  uid_t uid = 0;
  auto [p, ec] = std::from_chars(field.data(), field.data() + field.size(), uid, 10);
  if (ec != std::errc() || p != field.data() + field.size()) return std::nullopt;
  return uid;
}

}  // namespace

StatusMemory parse_status_memory(std::string_view text) {
  StatusMemory m;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    auto key = line.substr(0, colon);
    auto value = line.substr(colon + 1);
    if (key == "Uid") {
      m.euid = second_field_uid(value);
      continue;
    }
    std::optional<uint64_t>* slot = nullptr;
    if (key == "VmSize") slot = &m.vm_size_kb;
    else if (key == "VmRSS") slot = &m.vm_rss_kb;
    else if (key == "RssAnon") slot = &m.rss_anon_kb;
    else if (key == "RssFile") slot = &m.rss_file_kb;
    else if (key == "RssShmem") slot = &m.rss_shmem_kb;
    else if (key == "VmSwap") slot = &m.vm_swap_kb;
    if (slot) *slot = parse_kb_value(value);
    // The kernel prints VmSwap after every other line we need: skip the ~30 lines after.
    if (key == "VmSwap" && m.euid) break;
  }
  return m;
}

}  // namespace ptmem::proc
