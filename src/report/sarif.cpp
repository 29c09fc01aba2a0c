// SARIF 2.1.0, the format code scanning (GitHub, GitLab, IDE viewers) reads.  GitHub's
// rules shape it: every result has a ruleId, a message and one location (a source file
// when a frame has one, else the module, else the executable); regions only with a known
// line (startLine >= 1).  The whole stack is the result's code flow.  Children of
// --follow-forks give results too, each with its pid in the result's properties.
#include <array>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "format_util.hpp"
#include "ptmem/report/formats.hpp"
#include "ptmem/version.hpp"

namespace ptmem::report {
namespace {

using nlohmann::ordered_json;

struct Rule {
  const char* kind;  ///< Leak::kind, or "fd" for fd leaks
  const char* id;
  const char* level;
  const char* text;
};

constexpr std::array kRules = {
    Rule{"definitely_lost", "ptmem/definitely-lost", "error",
         "Memory never freed, and no pointer to it is left: it can no longer be freed."},
    Rule{"indirectly_lost", "ptmem/indirectly-lost", "error",
         "Memory never freed, pointed to only from lost blocks: it is lost with them."},
    Rule{"possibly_lost", "ptmem/possibly-lost", "warning",
         "Memory never freed, pointed to only into its interior: maybe lost."},
    Rule{"still_reachable", "ptmem/still-reachable", "note",
         "Memory never freed but still pointed to at the end: it could have been freed."},
    Rule{"unclassified", "ptmem/unclassified", "warning",
         "Memory never freed; the target's memory was not scanned, so how lost it is is not known."},
    Rule{"fd", "ptmem/fd-leak", "warning", "A file descriptor that was never closed."},
};

size_t rule_index(std::string_view kind) {
  for (size_t i = 0; i < kRules.size(); ++i)
    if (kind == kRules[i].kind) return i;
  return 4;  // an unknown kind is as good as unclassified
}

// A path as a URI reference: absolute paths as file:// URIs, relative ones relative (the
// viewer resolves them against the checkout); characters a URI cannot hold are %-encoded.
std::string path_uri(std::string_view path) {
  std::string out = path.starts_with('/') ? "file://" : "";
  for (unsigned char c : path) {
    if (std::isalnum(c) || std::string_view("/-._~!$&'()*+,;=:@").find(c) != std::string_view::npos)
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

ordered_json physical(const std::string& path, int line) {
  ordered_json p;
  p["artifactLocation"]["uri"] = path_uri(path);
  if (line > 0) p["region"]["startLine"] = line;
  return p;
}

ordered_json frame_location(const Frame& f) {
  ordered_json loc;
  if (!f.file.empty()) loc["physicalLocation"] = physical(f.file, f.line);
  else if (!f.module.empty()) loc["physicalLocation"] = physical(f.module, 0);
  loc["physicalLocation"]["address"]["absoluteAddress"] = f.address;
  loc["message"]["text"] = detail::frame_name(f) + (f.inlined ? " [inlined]" : "");
  return loc;
}

// The primary location: the innermost frame with a source file, else the innermost with a
// module, else the executable.
ordered_json primary_location(const std::vector<Frame>& stack, const TargetInfo& target) {
  for (const Frame& f : stack)
    if (!f.file.empty()) return physical(f.file, f.line);
  for (const Frame& f : stack)
    if (!f.module.empty()) return physical(f.module, 0);
  return physical(target.argv.empty() ? target.command : target.argv[0], 0);
}

// FNV-1a of the stack: the same site gets the same fingerprint from run to run, so code
// scanning tracks it as one alert.
std::string fingerprint(const std::vector<Frame>& stack) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : frames_key(stack)) h = (h ^ c) * 0x100000001b3ull;
  return fmt::format("{:016x}", h);
}

ordered_json result(const Rule& rule, size_t index, std::string text, const std::vector<Frame>& stack,
                    const TargetInfo& target, ordered_json properties) {
  ordered_json r;
  r["ruleId"] = rule.id;
  r["ruleIndex"] = index;
  r["level"] = rule.level;
  r["message"]["text"] = std::move(text);
  r["locations"] = ordered_json::array({{{"physicalLocation", primary_location(stack, target)}}});
  if (!stack.empty()) {
    ordered_json flow = ordered_json::array();
    for (const Frame& f : stack) flow.push_back({{"location", frame_location(f)}});
    r["codeFlows"] = ordered_json::array({{{"threadFlows", ordered_json::array({{{"locations", flow}}})}}});
    r["partialFingerprints"]["ptmemStack/v1"] = fingerprint(stack);
  }
  properties["pid"] = target.pid;
  properties["command"] = target.command;
  r["properties"] = std::move(properties);
  return r;
}

}  // namespace

std::string to_sarif(const Report& report) {
  ordered_json rules = ordered_json::array();
  for (const Rule& rule : kRules) {
    ordered_json r;
    r["id"] = rule.id;
    r["name"] = rule.kind;
    r["shortDescription"]["text"] = rule.text;
    r["defaultConfiguration"]["level"] = rule.level;
    rules.push_back(std::move(r));
  }
  ordered_json driver;
  driver["name"] = "ptmem";
  driver["version"] = kVersion;
  driver["semanticVersion"] = kVersion;
  driver["rules"] = std::move(rules);

  ordered_json results = ordered_json::array();
  auto processes = detail::processes(report);
  for (size_t p = 0; p < processes.size(); ++p) {
    const Report& r = *processes[p];
    std::string in = p > 0 ? " in " + detail::process_label(r.target) : "";
    for (const Leak& l : r.leaks) {
      size_t i = rule_index(l.kind);
      results.push_back(result(kRules[i], i, detail::leak_headline(l) + in, l.stack, r.target,
                               {{"kind", l.kind}, {"bytes", l.bytes}, {"blocks", l.blocks}}));
    }
    for (const FdLeak& f : r.fd_leaks) {
      size_t i = rule_index("fd");
      std::string about = f.description.empty() ? proc::to_string(f.kind) : f.description;
      results.push_back(result(kRules[i], i, fmt::format("fd {} ({}) is never closed{}", f.fd, about, in),
                               f.stack, r.target,
                               {{"kind", "fd"}, {"fd", f.fd}, {"fdKind", proc::to_string(f.kind)},
                                {"target", f.target}, {"origin", track::to_string(f.origin)}}));
    }
  }

  ordered_json run;
  run["tool"]["driver"] = std::move(driver);
  run["results"] = std::move(results);
  ordered_json log;
  log["$schema"] = "https://json.schemastore.org/sarif-2.1.0.json";
  log["version"] = "2.1.0";
  log["runs"] = ordered_json::array({std::move(run)});
  // Names and paths need not be UTF-8: replace bad bytes rather than throw.
  return log.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace ptmem::report
