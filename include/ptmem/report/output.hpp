// Which forms a report takes and what of it is shown: the registry of output formats
// (name, default file name, writer) and the --show-kinds filter.  The CLI picks; the
// writers (render.hpp, formats.hpp) know nothing of options.
#pragma once
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "ptmem/report/report.hpp"

namespace ptmem::report {

enum class Format { Text, Json, ValgrindXml, Sarif, Folded, Pprof, Svg };

struct FormatInfo {
  Format format;
  std::string_view name;       ///< as --format spells it ("svg" is --svg's)
  std::string_view file_name;  ///< in --output-dir
  bool binary;                 ///< not for a terminal
  bool needs_allocated;        ///< reads Report::allocated
};

/// Every format, in the order --help lists them.
std::span<const FormatInfo> formats();
const FormatInfo& info(Format f);
std::optional<Format> parse_format(std::string_view name);

/// The report in |f|.
std::string render(const Report& report, Format f);

/// A set of leak kinds, bit k for track::LeakKind k.
using KindMask = unsigned;
inline constexpr KindMask kAllKinds = (1u << track::kLeakKinds) - 1;
/// memcheck's default less "reachable": definite, indirect, possible.
inline constexpr KindMask kDefaultShownKinds = kAllKinds & ~(1u << static_cast<int>(track::LeakKind::StillReachable));
/// "definite,indirect,possible,reachable" (any subset, memcheck's words), "all" or "none".
std::optional<KindMask> parse_kinds(std::string_view list, std::string* error);

/// Takes the sites whose kind is not in |shown| out of report.leaks and leaked_* into
/// hidden_* (children too).  Unclassified sites (no scan) are always shown: their kind is
/// not known.  summary.by_kind keeps every kind, as memcheck's LEAK SUMMARY does.
void hide_kinds(Report& report, KindMask shown);

}  // namespace ptmem::report
