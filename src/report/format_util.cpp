#include "format_util.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace ptmem::report::detail {

std::vector<const Report*> processes(const Report& report) {
  std::vector<const Report*> out{&report};
  for (const Report& child : report.children) out.push_back(&child);
  return out;
}

std::string process_label(const TargetInfo& target) {
  if (target.command.empty()) return fmt::format("pid {}", target.pid);
  return fmt::format("pid {} ({})", target.pid, target.command);
}

std::string_view basename(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string frame_name(const Frame& frame) {
  if (!frame.function.empty()) return frame.function;
  if (!frame.module.empty()) return fmt::format("{}+0x{:x}", basename(frame.module), frame.module_offset);
  return fmt::format("0x{:x}", frame.address);
}

std::string spoken(std::string_view kind) {
  std::string s(kind);
  std::replace(s.begin(), s.end(), '_', ' ');
  return s;
}

std::string leak_headline(const Leak& leak) {
  return fmt::format("{} {} in {} {} never freed ({})", leak.bytes, leak.bytes == 1 ? "byte" : "bytes",
                     leak.blocks, leak.blocks == 1 ? "block is" : "blocks are", spoken(leak.kind));
}

namespace {

// Length of the valid UTF-8 sequence at |s[i]| (no overlongs, surrogates or code points
// past U+10FFFF), 0 if invalid.
size_t utf8_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (byte(i + k) & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: {
        size_t n = utf8_length(text, i);
        bool control = n == 1 && static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r';
        if (n == 0 || control) {
          out += '?';
          n = 1;
        } else {
          out.append(text.substr(i, n));
        }
        i += n;
        continue;
      }
    }
    ++i;
  }
  return out;
}

}  // namespace ptmem::report::detail
