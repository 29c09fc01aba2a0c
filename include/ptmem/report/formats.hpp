// The report in the formats of the tools users already have (issue #10): memcheck's XML,
// SARIF for code scanning, folded stacks and a flame graph, pprof.  Each is a pure
// function of the Report model; the CLI decides where each goes.
#pragma once
#include <string>

#include "ptmem/report/report.hpp"

namespace ptmem::report {

/// valgrind memcheck's XML (protocol 4): an <error> per leak site (kind Leak_DefinitelyLost,
/// Leak_IndirectlyLost, Leak_PossiblyLost, Leak_StillReachable), xwhat with leakedbytes and
/// leakedblocks, a <stack> of <frame>s with ip/obj/fn/dir/file/line; fd leaks as well.
std::string to_valgrind_xml(const Report& report);

/// SARIF 2.1.0 (JSON text): a result per leak site and per leaked fd.
std::string to_sarif(const Report& report);

/// Leaked bytes per stack, one "outermost;...;innermost BYTES" line per stack, as
/// flamegraph.pl, inferno and speedscope read it.
std::string to_folded(const Report& report);

/// A self-contained SVG flame graph of the leaked bytes (names and bytes on hover).
std::string to_flame_svg(const Report& report);

/// A gzipped profile.proto (pprof): sample types leaked bytes/blocks, allocated
/// bytes/blocks.  Binary: the string holds bytes.
std::string to_pprof(const Report& report);

}  // namespace ptmem::report
