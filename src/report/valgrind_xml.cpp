// memcheck's XML (valgrind 3.19, protocol 4), so that tools that read it (IDE plugins, CI
// publishers) read ptmem's report.  Mapping decisions:
//  - one document for the traced process and its --follow-forks children: <pid> is the
//    first process's, and a child's errors name it in their text ("... of pid 1235 (app)");
//  - kind "unclassified" (no reachability scan ran) becomes Leak_PossiblyLost: the blocks
//    were never freed but nothing proves them lost or reachable, and memcheck's possibly
//    lost is the kind that says "maybe";
//  - fd leaks use valgrind 3.22's FdNotClosed layout (<fd>, <path>, <what>), which 3.19
//    lacks; an fd whose creation was not seen has no <stack>;
//  - <errorcounts> counts non-leak errors only, as memcheck does: the FdNotClosed ones;
//  - what ptmem does not know is written as memcheck's neutral value: <ppid> of the first
//    process 0, <time> zero.
#include <map>

#include <fmt/format.h>

#include "format_util.hpp"
#include "ptmem/report/formats.hpp"
#include "ptmem/version.hpp"

namespace ptmem::report {
namespace {

using detail::xml_escape;

const char* memcheck_kind(std::string_view kind) {
  if (kind == "definitely_lost") return "Leak_DefinitelyLost";
  if (kind == "indirectly_lost") return "Leak_IndirectlyLost";
  if (kind == "still_reachable") return "Leak_StillReachable";
  return "Leak_PossiblyLost";  // possibly_lost, unclassified: see above
}

// memcheck's words after "N bytes in M blocks are ".
std::string memcheck_what(std::string_view kind) {
  if (kind == "unclassified") return "never freed (not classified)";
  return detail::spoken(kind);
}

void element(std::string& out, int indent, std::string_view name, std::string_view value) {
  out += fmt::format("{:{}}<{}>{}</{}>\n", "", indent, name, xml_escape(value), name);
}

void append_stack(std::string& out, const std::vector<Frame>& stack) {
  if (stack.empty()) return;
  out += "  <stack>\n";
  for (const Frame& f : stack) {
    out += "    <frame>\n";
    element(out, 6, "ip", fmt::format("0x{:X}", f.address));
    if (!f.module.empty()) element(out, 6, "obj", f.module);
    if (!f.function.empty()) element(out, 6, "fn", f.function);
    if (!f.file.empty()) {
      auto slash = f.file.rfind('/');
      if (slash != std::string::npos) element(out, 6, "dir", f.file.substr(0, slash == 0 ? 1 : slash));
      element(out, 6, "file", detail::basename(f.file));
    }
    if (f.line > 0) element(out, 6, "line", std::to_string(f.line));
    out += "    </frame>\n";
  }
  out += "  </stack>\n";
}

std::string of_process(const Report& process, bool child) {
  return child ? fmt::format(" of {}", detail::process_label(process.target)) : "";
}

}  // namespace

std::string to_valgrind_xml(const Report& report) {
  const TargetInfo& t = report.target;
  std::string out = "<?xml version=\"1.0\"?>\n\n<valgrindoutput>\n\n";
  out += "<protocolversion>4</protocolversion>\n<protocoltool>memcheck</protocoltool>\n\n";
  std::string command = t.command;
  if (!t.argv.empty()) {
    command.clear();
    for (const std::string& a : t.argv) command += (command.empty() ? "" : " ") + a;
  }
  out += "<preamble>\n";
  element(out, 2, "line", "ptmem, a memory and fd leak tracker (memcheck's XML)");
  element(out, 2, "line", fmt::format("Using ptmem-{}", kVersion));
  element(out, 2, "line", "Command: " + command);
  out += "</preamble>\n\n";
  out += fmt::format("<pid>{}</pid>\n<ppid>0</ppid>\n<tool>memcheck</tool>\n\n", t.pid);
  out += "<args>\n  <vargv>\n    <exe>ptmem</exe>\n  </vargv>\n  <argv>\n";
  if (t.argv.empty()) {
    element(out, 4, "exe", t.command);
  } else {
    element(out, 4, "exe", t.argv[0]);
    for (size_t i = 1; i < t.argv.size(); ++i) element(out, 4, "arg", t.argv[i]);
  }
  out += "  </argv>\n</args>\n\n";
  for (const char* state : {"RUNNING", "FINISHED"})
    out += fmt::format("<status>\n  <state>{}</state>\n  <time>00:00:00:00.000 </time>\n</status>\n\n", state);

  uint64_t unique = 0;
  std::vector<uint64_t> fd_errors;
  auto processes = detail::processes(report);
  for (size_t p = 0; p < processes.size(); ++p) {
    const Report& r = *processes[p];
    const std::string of = of_process(r, p > 0);
    for (size_t i = 0; i < r.leaks.size(); ++i) {
      const Leak& l = r.leaks[i];
      out += fmt::format("<error>\n  <unique>0x{:x}</unique>\n  <tid>1</tid>\n  <kind>{}</kind>\n  <xwhat>\n",
                         unique++, memcheck_kind(l.kind));
      element(out, 4, "text", fmt::format("{} bytes in {} blocks are {} in loss record {} of {}{}", l.bytes,
                                          l.blocks, memcheck_what(l.kind), i + 1, r.leaks.size(), of));
      out += fmt::format("    <leakedbytes>{}</leakedbytes>\n    <leakedblocks>{}</leakedblocks>\n  </xwhat>\n",
                         l.bytes, l.blocks);
      append_stack(out, l.stack);
      out += "</error>\n\n";
    }
    for (const FdLeak& f : r.fd_leaks) {
      fd_errors.push_back(unique);
      out += fmt::format("<error>\n  <unique>0x{:x}</unique>\n  <tid>1</tid>\n  <kind>FdNotClosed</kind>\n",
                         unique++);
      out += fmt::format("  <fd>{}</fd>\n", f.fd);
      if (!f.target.empty()) element(out, 2, "path", f.target);
      std::string about = f.description.empty() ? proc::to_string(f.kind) : f.description;
      element(out, 2, "what", fmt::format("Open file descriptor {}: {}{}", f.fd, about, of));
      append_stack(out, f.stack);
      out += "</error>\n\n";
    }
  }

  out += "<errorcounts>\n";
  for (uint64_t u : fd_errors)
    out += fmt::format("  <pair>\n    <count>1</count>\n    <unique>0x{:x}</unique>\n  </pair>\n", u);
  out += "</errorcounts>\n\n<suppcounts>\n";
  // One pair per suppression, its uses summed over the processes, in order of first use.
  std::vector<std::string> names;
  std::map<std::string, uint64_t> uses;
  for (const Report* r : processes)
    for (const SuppressionUse& s : r->suppressions_used) {
      auto [it, inserted] = uses.try_emplace(s.name, 0);
      if (inserted) names.push_back(s.name);
      it->second += s.sites;
    }
  for (const std::string& name : names) {
    out += fmt::format("  <pair>\n    <count>{}</count>\n", uses[name]);
    element(out, 4, "name", name);
    out += "  </pair>\n";
  }
  out += "</suppcounts>\n\n</valgrindoutput>\n\n";
  return out;
}

}  // namespace ptmem::report
