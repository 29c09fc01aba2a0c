#include "ptmem/report/output.hpp"

#include <array>
#include <fmt/format.h>

#include "ptmem/report/formats.hpp"
#include "ptmem/report/render.hpp"

namespace ptmem::report {
namespace {

constexpr std::array<FormatInfo, 7> kFormats{{
    {Format::Text, "text", "report.txt", false, false},
    {Format::Json, "json", "report.json", false, false},
    {Format::ValgrindXml, "valgrind-xml", "report.xml", false, false},
    {Format::Sarif, "sarif", "report.sarif", false, false},
    {Format::Folded, "folded", "report.folded", false, false},
    {Format::Pprof, "pprof", "report.pb.gz", true, true},
    {Format::Svg, "svg", "report.svg", false, false},
}};

// memcheck's --show-leak-kinds words, in LeakKind order.
constexpr std::array<std::string_view, track::kLeakKinds> kKindWords{"definite", "indirect", "possible", "reachable"};

}  // namespace

std::span<const FormatInfo> formats() { return kFormats; }

const FormatInfo& info(Format f) {
  for (const FormatInfo& i : kFormats)
    if (i.format == f) return i;
  return kFormats[0];
}

std::optional<Format> parse_format(std::string_view name) {
  for (const FormatInfo& i : kFormats)
    if (i.name == name) return i.format;
  return std::nullopt;
}

std::string render(const Report& report, Format f) {
  switch (f) {
    case Format::Text: return to_text(report);
    case Format::Json: return to_json_text(report);
    case Format::ValgrindXml: return to_valgrind_xml(report);
    case Format::Sarif: return to_sarif(report);
    case Format::Folded: return to_folded(report);
    case Format::Pprof: return to_pprof(report);
    case Format::Svg: return to_flame_svg(report);
  }
  return {};
}

std::optional<KindMask> parse_kinds(std::string_view list, std::string* error) {
  if (list == "all") return kAllKinds;
  if (list == "none") return 0u;
  KindMask mask = 0;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view word = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    bool known = false;
    for (size_t k = 0; k < kKindWords.size(); ++k)
      if (word == kKindWords[k]) {
        mask |= 1u << k;
        known = true;
      }
    if (!known) {
      if (error)
        *error = fmt::format("'{}' is not a leak kind: give definite, indirect, possible, reachable (comma-separated), all or none",
                             word);
      return std::nullopt;
    }
  }
  return mask;
}

void hide_kinds(Report& report, KindMask shown) {
  for (Report& child : report.children) hide_kinds(child, shown);
  std::erase_if(report.leaks, [&](const Leak& leak) {
    for (int k = 0; k < track::kLeakKinds; ++k) {
      if (leak.kind != track::to_string(static_cast<track::LeakKind>(k))) continue;
      if (shown & (1u << k)) return false;
      report.hidden_blocks += leak.blocks;
      report.hidden_bytes += leak.bytes;
      ++report.hidden_sites;
      report.summary.leaked_blocks -= leak.blocks;
      report.summary.leaked_bytes -= leak.bytes;
      --report.summary.leak_sites;
      return true;
    }
    return false;  // unclassified
  });
}

}  // namespace ptmem::report
