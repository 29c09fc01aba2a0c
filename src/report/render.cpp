#include "ptmem/report/render.hpp"

#include <algorithm>

#include <cstring>
#include <map>
#include <string.h>

#include <fmt/format.h>

namespace ptmem::report {
namespace {

using nlohmann::ordered_json;

std::string_view basename(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

const char* plural(uint64_t n, const char* one, const char* many) { return n == 1 ? one : many; }

// "definitely_lost" as a person reads it: "definitely lost".
std::string spoken(std::string_view kind) {
  std::string s(kind);
  std::replace(s.begin(), s.end(), '_', ' ');
  return s;
}

// "    at 0x401136: make_widget (widget.c:12)", valgrind-style: the first frame "at", the
// callers "by"; code without line info names its module instead.
void append_frame(std::string& out, const Frame& f, bool first) {
  out += fmt::format("    {} 0x{:x}: {}", first ? "at" : "by", f.address,
                     f.function.empty() ? "???" : f.function);
  if (!f.file.empty()) {
    if (f.line > 0) out += fmt::format(" ({}:{})", basename(f.file), f.line);
    else out += fmt::format(" ({})", basename(f.file));
  } else if (!f.module.empty()) {
    out += fmt::format(" (in {})", f.module);
  }
  if (f.inlined) out += " [inlined]";
  out += '\n';
}

void append_stack(std::string& out, const std::vector<Frame>& stack, const char* if_empty) {
  if (stack.empty()) {
    out += fmt::format("    ({})\n", if_empty);
    return;
  }
  for (size_t i = 0; i < stack.size(); ++i) append_frame(out, stack[i], i == 0);
}

std::string fd_text(const FdLeak& f) {
  std::string s = fmt::format("fd {} ({}", f.fd, f.description.empty() ? proc::to_string(f.kind) : f.description);
  if (f.flags) s += ", flags " + proc::decode_open_flags(*f.flags);
  return s + ")";
}

std::string stack_key(const FdLeak& f) {
  if (f.stack.empty()) return std::string("origin:") + track::to_string(f.origin);
  return frames_key(f.stack);
}

constexpr const char* kNoMemoryStack = "no call stack: it could not be unwound";
constexpr const char* kNoFdStack =
    "origin unknown: open before ptmem attached, or created through a path ptmem does not trace";

ordered_json frame_json(const Frame& f) {
  ordered_json j;
  j["address"] = fmt::format("0x{:x}", f.address);
  j["module"] = f.module;
  j["function"] = f.function.empty() ? ordered_json(nullptr) : ordered_json(f.function);
  j["file"] = f.file.empty() ? ordered_json(nullptr) : ordered_json(f.file);
  j["line"] = f.line > 0 ? ordered_json(f.line) : ordered_json(nullptr);
  j["inlined"] = f.inlined;
  j["module_offset"] = fmt::format("0x{:x}", f.module_offset);
  return j;
}

ordered_json trend_json(const SiteTrend& t) {
  return {{"bytes_per_s", t.bytes_per_s}, {"fds_per_s", t.fds_per_s}, {"steadiness", t.steadiness},
          {"suspect", t.suspect}, {"oldest_seconds", t.oldest_seconds}};
}

ordered_json stack_json(const std::vector<Frame>& stack) {
  ordered_json a = ordered_json::array();
  for (const Frame& f : stack) a.push_back(frame_json(f));
  return a;
}

}  // namespace

std::string signal_name(int sig) {
  if (const char* abbrev = sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return fmt::format("SIG{}", sig);
}

std::string to_text(const Report& r) {
  std::string out;
  std::string who = fmt::format("process {}", r.target.pid);
  if (!r.target.command.empty()) who += fmt::format(" ({})", r.target.command);
  if (r.target.exit_code) out += fmt::format("ptmem: {} exited with status {}\n", who, *r.target.exit_code);
  else if (r.target.signal) out += fmt::format("ptmem: {} was killed by {}\n", who, signal_name(*r.target.signal));
  else if (r.target.detached) out += fmt::format("ptmem: detached from {}, which keeps running\n", who);
  else out += fmt::format("ptmem: {}\n", who);

  for (const Leak& leak : r.leaks) {
    out += fmt::format("\nptmem: {} {} in {} {} never freed ({})\n", leak.bytes,
                       plural(leak.bytes, "byte", "bytes"), leak.blocks,
                       plural(leak.blocks, "block is", "blocks are"), spoken(leak.kind));
    append_stack(out, leak.stack, kNoMemoryStack);
  }

  // fds of one site print once, with their list; groups in the order of their lowest fd.
  std::map<std::string, size_t> group_of;
  std::vector<std::vector<const FdLeak*>> groups;
  for (const FdLeak& f : r.fd_leaks) {
    auto [it, inserted] = group_of.try_emplace(stack_key(f), groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].push_back(&f);
  }
  for (const auto& g : groups) {
    if (g.size() == 1) {
      out += fmt::format("\nptmem: {} is never closed\n", fd_text(*g[0]));
    } else {
      out += fmt::format("\nptmem: {} fds are never closed, all opened at the same place:\n", g.size());
      for (const FdLeak* f : g) out += fmt::format("      {}\n", fd_text(*f));
    }
    append_stack(out, g[0]->stack, kNoFdStack);
  }

  const Summary& s = r.summary;
  const track::Counters& c = s.counters;
  out += "\nptmem: SUMMARY\n";
  if (r.memory_traced) {
    out += fmt::format("ptmem:   leaked memory: {} {} in {} {} ({} {})\n", s.leaked_bytes,
                       plural(s.leaked_bytes, "byte", "bytes"), s.leaked_blocks,
                       plural(s.leaked_blocks, "block", "blocks"), s.leak_sites,
                       plural(s.leak_sites, "site", "sites"));
    if (s.classified) {
      for (int k = 0; k < track::kLeakKinds; ++k)
        out += fmt::format("ptmem:     {}: {} {} in {} {}\n",
                           spoken(track::to_string(static_cast<track::LeakKind>(k))), s.by_kind[k].bytes,
                           plural(s.by_kind[k].bytes, "byte", "bytes"), s.by_kind[k].blocks,
                           plural(s.by_kind[k].blocks, "block", "blocks"));
    }
    out += fmt::format("ptmem:   heap usage: {} {}, {} {}, {} bytes allocated, peak {} bytes in use\n",
                       c.alloc_calls, plural(c.alloc_calls, "alloc", "allocs"), c.free_calls,
                       plural(c.free_calls, "free", "frees"), c.total_allocated_bytes,
                       c.peak_live_bytes);
    out += fmt::format("ptmem:   other calls: {} free(NULL), {} realloc, {} failed allocations\n",
                       c.free_null_calls, c.realloc_calls, c.failed_alloc_calls);
    if (c.frees_of_unknown_blocks)
      out += fmt::format("ptmem:   frees of unknown blocks (allocated before tracing, or not seen): {}\n", c.frees_of_unknown_blocks);
    if (c.unseen_frees)
      out += fmt::format("ptmem:   blocks whose free was not seen: {}\n", c.unseen_frees);
    if (c.exec_dropped_blocks)
      out += fmt::format("ptmem:   dropped at exec: {} bytes in {} {}\n", c.exec_dropped_bytes,
                         c.exec_dropped_blocks, plural(c.exec_dropped_blocks, "block", "blocks"));
    if (r.threads.size() > 1) {
      // Which thread allocated what is left: the worker holding the memory (worth a line
      // only when more than one thread holds some).
      out += "ptmem:   live at the end, by allocating thread:\n";
      constexpr size_t kShown = 10;
      for (size_t i = 0; i < r.threads.size() && i < kShown; ++i) {
        const ThreadLive& t = r.threads[i];
        out += fmt::format("ptmem:     {} ({}): {} {} in {} {}\n", t.tid, t.name.empty() ? "?" : t.name, t.bytes,
                           plural(t.bytes, "byte", "bytes"), t.blocks, plural(t.blocks, "block", "blocks"));
      }
      if (r.threads.size() > kShown) out += fmt::format("ptmem:     ... and {} more threads\n", r.threads.size() - kShown);
    }
    if (r.hidden_sites)
      out += fmt::format("ptmem:   not shown (--show-kinds): {} {} in {} {} ({} {})\n", r.hidden_bytes,
                         plural(r.hidden_bytes, "byte", "bytes"), r.hidden_blocks,
                         plural(r.hidden_blocks, "block", "blocks"), r.hidden_sites,
                         plural(r.hidden_sites, "site", "sites"));
    if (r.suppressed_sites) {
      out += fmt::format("ptmem:   suppressed: {} {} in {} {} ({} {})\n", r.suppressed_bytes,
                         plural(r.suppressed_bytes, "byte", "bytes"), r.suppressed_blocks,
                         plural(r.suppressed_blocks, "block", "blocks"), r.suppressed_sites,
                         plural(r.suppressed_sites, "site", "sites"));
      // memcheck's "used_suppression" lines: what each entry took out, and where it is.
      for (const SuppressionUse& u : r.suppressions_used)
        out += fmt::format("ptmem:     {} {} in {} {} by {} ({}:{})\n", u.bytes, plural(u.bytes, "byte", "bytes"),
                           u.blocks, plural(u.blocks, "block", "blocks"), u.name, u.file, u.line);
    }
  }
  if (r.fds_traced) {
    out += fmt::format("ptmem:   leaked fds: {} ({} open at the end, counting 0-2 and inherited ones)\n",
                       s.fd_leaked, s.fd_open_at_end);
    out += fmt::format("ptmem:   fds: {} opened, {} closed\n", c.fd_opened, c.fd_closed);
    if (c.fd_found_open || c.fd_found_closed)
      out += fmt::format("ptmem:   fds not seen opening: {}, not seen closing: {}\n", c.fd_found_open,
                         c.fd_found_closed);
  }
  out += fmt::format("ptmem:   threads seen: {}\n", c.threads_seen);
  // --follow-forks: each child's own report, after the parent's.
  for (const Report& child : r.children) {
    out += fmt::format("\n== child process {}", child.target.pid);
    if (!child.target.command.empty()) out += fmt::format(" ({})", child.target.command);
    out += " ==\n" + to_text(child);
  }
  return out;
}

ordered_json to_json(const Report& r) {
  ordered_json j;
  j["version"] = 1;
  ordered_json t;
  t["pid"] = r.target.pid;
  t["command"] = r.target.command;
  t["exit_code"] = r.target.exit_code ? ordered_json(*r.target.exit_code) : ordered_json(nullptr);
  t["signal"] = r.target.signal ? ordered_json(signal_name(*r.target.signal)) : ordered_json(nullptr);
  t["detached"] = r.target.detached;
  t["argv"] = r.target.argv;
  j["target"] = std::move(t);

  const Summary& s = r.summary;
  const track::Counters& c = s.counters;
  ordered_json m;
  m["alloc_calls"] = c.alloc_calls;
  m["free_calls"] = c.free_calls;
  m["total_allocated_bytes"] = c.total_allocated_bytes;
  m["live_blocks"] = c.live_blocks;
  m["live_bytes"] = c.live_bytes;
  m["peak_live_bytes"] = c.peak_live_bytes;
  m["leaked_blocks"] = s.leaked_blocks;
  m["leaked_bytes"] = s.leaked_bytes;
  m["reachability_scanned"] = s.classified;
  for (int k = 0; k < track::kLeakKinds; ++k) {
    std::string name(track::to_string(static_cast<track::LeakKind>(k)));
    m[name + "_blocks"] = s.classified ? ordered_json(s.by_kind[k].blocks) : ordered_json(nullptr);
    m[name + "_bytes"] = s.classified ? ordered_json(s.by_kind[k].bytes) : ordered_json(nullptr);
  }
  m["free_null_calls"] = c.free_null_calls;
  m["realloc_calls"] = c.realloc_calls;
  m["failed_alloc_calls"] = c.failed_alloc_calls;
  m["frees_of_unknown_blocks"] = c.frees_of_unknown_blocks;
  m["fd_opened"] = c.fd_opened;
  m["fd_closed"] = c.fd_closed;
  m["fd_open_at_end"] = s.fd_open_at_end;
  m["threads_seen"] = c.threads_seen;
  // Extra fields (the contract allows them).
  m["leak_sites"] = s.leak_sites;
  m["fd_leaked"] = s.fd_leaked;
  m["unseen_frees"] = c.unseen_frees;
  m["exec_dropped_blocks"] = c.exec_dropped_blocks;
  m["exec_dropped_bytes"] = c.exec_dropped_bytes;
  m["fd_closes_of_unknown"] = c.fd_closes_of_unknown;
  m["fd_found_open"] = c.fd_found_open;
  m["fd_found_closed"] = c.fd_found_closed;
  m["fd_closed_at_exec"] = c.fd_closed_at_exec;
  m["memory_traced"] = r.memory_traced;
  m["fds_traced"] = r.fds_traced;
  // Sites taken out of "leaks" (and of leaked_*): by a suppression, or a kind --show-kinds
  // leaves out.
  m["suppressed_blocks"] = r.suppressed_blocks;
  m["suppressed_bytes"] = r.suppressed_bytes;
  m["suppressed_sites"] = r.suppressed_sites;
  m["hidden_blocks"] = r.hidden_blocks;
  m["hidden_bytes"] = r.hidden_bytes;
  m["hidden_sites"] = r.hidden_sites;
  if (s.scan) {
    const track::ScanStats& sc = *s.scan;
    ordered_json scan;
    scan["blocks"] = sc.blocks;
    scan["blocks_scanned"] = sc.blocks_scanned;
    scan["bytes"] = sc.bytes();
    scan["block_bytes"] = sc.block_bytes;
    scan["roots_bytes"] = sc.roots_bytes;
    scan["reads"] = sc.reads;
    scan["seconds"] = sc.seconds;
    scan["cpu_seconds"] = sc.cpu_seconds;
    scan["index_bytes"] = sc.index_bytes;
    m["scan"] = std::move(scan);
  } else {
    m["scan"] = nullptr;
  }
  j["summary"] = std::move(m);

  ordered_json leaks = ordered_json::array();
  for (const Leak& l : r.leaks) {
    ordered_json e;
    e["kind"] = l.kind;
    e["blocks"] = l.blocks;
    e["bytes"] = l.bytes;
    e["stack"] = stack_json(l.stack);
    if (l.trend) e["growth"] = trend_json(*l.trend);
    leaks.push_back(std::move(e));
  }
  j["leaks"] = std::move(leaks);

  ordered_json fds = ordered_json::array();
  for (const FdLeak& f : r.fd_leaks) {
    ordered_json e;
    e["fd"] = f.fd;
    e["kind"] = proc::to_string(f.kind);
    e["target"] = f.target;
    e["flags"] = f.flags ? ordered_json(proc::decode_open_flags(*f.flags)) : ordered_json(nullptr);
    e["origin"] = track::to_string(f.origin);
    e["stack"] = stack_json(f.stack);
    e["flags_octal"] = f.flags ? ordered_json(fmt::format("0{:o}", *f.flags)) : ordered_json(nullptr);
    e["description"] = f.description;
    if (f.trend) e["growth"] = trend_json(*f.trend);
    if (f.socket) {
      ordered_json so;
      so["family"] = f.socket->family;
      so["protocol"] = f.socket->protocol;
      so["type"] = f.socket->type;
      so["local"] = f.socket->local;
      so["remote"] = f.socket->remote;
      so["state"] = f.socket->state;
      so["inode"] = f.socket->inode;
      e["socket"] = std::move(so);
    }
    fds.push_back(std::move(e));
  }
  j["fd_leaks"] = std::move(fds);

  ordered_json threads = ordered_json::array();
  for (const ThreadLive& t : r.threads)
    threads.push_back({{"tid", t.tid}, {"name", t.name}, {"live_blocks", t.blocks}, {"live_bytes", t.bytes}});
  j["threads"] = std::move(threads);

  ordered_json used = ordered_json::array();
  for (const SuppressionUse& u : r.suppressions_used)
    used.push_back({{"name", u.name}, {"file", u.file}, {"line", u.line}, {"sites", u.sites},
                    {"blocks", u.blocks}, {"bytes", u.bytes}});
  j["suppressions_used"] = std::move(used);
  if (r.children_traced) {
    ordered_json children = ordered_json::array();
    for (const Report& child : r.children) children.push_back(to_json(child));
    j["children"] = std::move(children);
  }
  return j;
}

std::string to_json_text(const Report& r) {
  // Paths and names come from the target and need not be UTF-8: replace bad bytes rather
  // than throw.
  return to_json(r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace ptmem::report
