// What the export formats (formats.hpp) share: the processes of a report, frame names,
// headlines and XML escaping.  Private to src/report.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "ptmem/report/report.hpp"

namespace ptmem::report::detail {

/// The traced processes: the report itself first, then its --follow-forks children.
std::vector<const Report*> processes(const Report& report);

/// "pid 1234 (app)", or "pid 1234" without a command.
std::string process_label(const TargetInfo& target);

/// The module's file name without its directory ("libc.so.6").
std::string_view basename(std::string_view path);

/// A frame's name for a profile: its function, else "module+0xoffset" (the module's file
/// name), else its address.
std::string frame_name(const Frame& frame);

/// "40 bytes in 1 block are never freed (definitely lost)", as the text report says it.
std::string leak_headline(const Leak& leak);

/// "definitely_lost" as a person reads it: "definitely lost".
std::string spoken(std::string_view kind);

/// Text safe in XML character data and attribute values: markup characters escaped, bytes
/// XML 1.0 forbids (controls, invalid UTF-8) replaced by '?'.  Names come from the target's
/// symbols and paths, which are arbitrary bytes.
std::string xml_escape(std::string_view text);

}  // namespace ptmem::report::detail
