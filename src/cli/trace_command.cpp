// `ptmem launch` and `ptmem attach`: options, the tracing session, and the report.
// Data flows one way: Session (events) -> Tracker and StackTable -> report::build_report.
#include <cstdlib>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fmt/format.h>
#include <memory>
#include <optional>
#include <sys/resource.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <fmt/ranges.h>

#include "ptmem/cli/command.hpp"
#include "ptmem/proc/fds.hpp"
#include "ptmem/proc/maps.hpp"
#include "ptmem/ptrace/remote_memory.hpp"
#include "ptmem/ptrace/session.hpp"
#include "ptmem/report/output.hpp"
#include "ptmem/report/render.hpp"
#include "ptmem/report/report.hpp"
#include "ptmem/report/suppressions.hpp"
#include "ptmem/report/symbolizer_frames.hpp"
#include "ptmem/symbols/symbolizer.hpp"
#include "ptmem/track/reachability.hpp"
#include "ptmem/track/stack_table.hpp"
#include "ptmem/track/tracker.hpp"
#include "ptmem/util/duration.hpp"
#include "ptmem/util/output_file.hpp"
#include "ptmem/util/eprint.hpp"
#include "ptmem/util/test_pause.hpp"
#include "live_screen.hpp"
#include "live_view.hpp"
#include "ptmem/stats/run.hpp"
#include "ptmem/ui/terminal.hpp"

namespace ptmem::cli {
namespace {

// The target's writable memory as roots, read through process_vm_readv.
// Stacks count from each thread's stack pointer up (less the 128-byte red zone a leaf
// function may use): below it lie dead frames, whose stale pointers would hide leaks.
// A thread that ended left its stack to glibc's cache, stale words and all: what lay below
// its stack pointer when it exited (the frames of everything it did) is dead too.  Above
// it remain its last frame, its TLS and its descriptor, which memcheck scans as well.
// The threads' general registers are roots too.
std::optional<track::Reachability> scan_reachability(pid_t pid, const track::Tracker& tracker,
                                                     const std::vector<arch::Registers>& threads,
                                                     const std::vector<arch::Registers>& exited) {
  auto maps = proc::read_maps(pid);
  if (!maps) return std::nullopt;
  // Shared mappings are left out: a pointer to a private heap block has no business there,
  // and reading a big shared file mapping would be disk I/O on the target's behalf.
  std::vector<track::MemoryRange> roots;
  uint64_t total = 0;
  for (const proc::Mapping& m : *maps) {
    if (!m.read || !m.write || m.shared || m.path == "[vvar]" || m.path == "[vsyscall]") continue;
    track::MemoryRange range{m.start, m.end};
    bool live = false;
    for (const arch::Registers& r : threads)
      if (r.sp() >= m.start && r.sp() < m.end) {
        range.start = std::max(m.start, r.sp() - 128);
        live = true;
      }
    if (!live)
      for (const arch::Registers& r : exited)
        if (r.sp() >= m.start && r.sp() < m.end) range.start = std::max(range.start, r.sp() - 128);
    if (range.start >= range.end) continue;
    roots.push_back(range);
    total += range.end - range.start;
  }
  // The target waits while we read; past this it would wait for minutes.
  constexpr uint64_t kMaxScan = uint64_t{32} << 30;
  if (total > kMaxScan) {
    util::eprint("ptmem: not classifying reachability: {} GiB of writable memory to scan (over {} GiB)\n",
               total >> 30, kMaxScan >> 30);
    return std::nullopt;
  }
  struct Memory final : track::TargetMemory {
    explicit Memory(pid_t pid) : remote(pid) {}
    size_t read(uint64_t addr, void* buf, size_t len) override { return remote.read_partial(addr, buf, len); }
    ptrace::RemoteMemory remote;
  } memory(pid);
  std::vector<uint64_t> registers;
  for (const arch::Registers& r : threads) {
    auto words = r.dwarf();  // the general registers (and rip, which points at no block)
    registers.insert(registers.end(), words.begin(), words.end());
  }
  return track::Reachability::scan(tracker.allocations(), roots, registers, memory);
}

struct TraceArgs {
  std::vector<std::string> outputs;  // -o, one per --format, in order
  std::vector<std::string> formats;  // --format; none: text
  std::string output_dir;
  std::string svg;
  std::vector<std::string> suppressions;
  CLI::Option* gen_suppressions = nullptr;  // given (count() > 0), with or without =FILE
  std::string gen_suppressions_file;         // "": stderr
  bool no_default_suppressions = false;
  std::string show_kinds = "definite,indirect,possible";
  size_t depth = 16;
  std::string duration;
  std::string interval = "1s";  // "0": no live view
  std::string live = "auto";    // how: auto, screen, line, blocks
  std::string record;
  int error_exitcode = -1;
  int fd_error_exitcode = -1;
  std::string engine;
  bool no_fds = false;
  bool fds_only = false;
  bool no_reachability = false;
  bool quiet = false;
  bool verbose = false;
  bool follow_forks = false;
  std::vector<std::string> program;
  pid_t pid = 0;
};

// The default can come from the environment, so that a test suite runs under either.
std::string default_engine() {
  const char* env = std::getenv("PTMEM_ENGINE");
  return env && *env ? env : "inject";
}

void add_common_options(CLI::App* app, TraceArgs& a) {
  std::vector<std::string> names;
  for (const auto& f : report::formats())
    if (f.format != report::Format::Svg) names.emplace_back(f.name);
  app->add_option("-o,--output", a.outputs,
                  "Write the report to FILE (whole or not at all); with several --format, one -o each, in order")
      ->type_name("FILE");
  app->add_option("--format", a.formats, "Report format (repeatable): " + fmt::format("{}", fmt::join(names, ", ")))
      ->check(CLI::IsMember(names))
      ->type_name("FORMAT");
  app->add_option("--output-dir", a.output_dir,
                  "Write every --format to DIR/report.<ext> (report.txt, report.json, report.xml, report.sarif, report.folded, report.pb.gz)")
      ->type_name("DIR");
  app->add_option("--svg", a.svg, "Also write a flame graph of the leaked bytes to FILE (SVG)")->type_name("FILE");
  app->add_option("--suppressions", a.suppressions,
                  "Suppression file, valgrind .supp or LeakSanitizer leak: patterns (repeatable)")
      ->type_name("FILE");
  a.gen_suppressions = app->add_option("--gen-suppressions", a.gen_suppressions_file,
                  "Write a valgrind suppression entry for every reported leak site, to FILE or (without =FILE) stderr")
      ->expected(0, 1)
      ->type_name("[=FILE]");
  app->add_flag("--no-default-suppressions", a.no_default_suppressions,
                "Report the C and C++ runtimes' one-time allocations too");
  app->add_option("--show-kinds", a.show_kinds,
                  "Leak kinds to report: definite,indirect,possible,reachable (any of them), all or none")
      ->type_name("KINDS")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->check(CLI::Validator(
          [](std::string& v) {
            std::string error;
            return report::parse_kinds(v, &error) ? std::string() : error;
          },
          "KINDS"));
  app->add_option("--depth", a.depth, "Frames per call stack (default 16)")
      ->check(CLI::Range(1, 256));
  app->add_option("--interval", a.interval,
                  "Live figures every DUR (default 1s; 0: none): a block on stderr when it is not a terminal")
      ->check(CLI::Validator(
          [](std::string& v) {
            std::string error;
            return v == "0" || util::parse_duration(v, &error) ? std::string() : error;
          },
          "DUR"))
      ->type_name("DUR");
  app->add_option("--record", a.record,
                  "Append one JSON line per interval to FILE, flushed as written, and the final report last")
      ->type_name("FILE");
  app->add_option("--duration", a.duration, "Stop tracing after DUR (e.g. 500ms, 10s, 2m), detach, report")
      ->check(duration_validator())
      ->type_name("DUR");
  app->add_option("--error-exitcode", a.error_exitcode,
                  "Exit with N when memory leaks are reported (shown and not suppressed)")
      ->check(CLI::Range(0, 255))
      ->type_name("N");
  app->add_option("--fd-error-exitcode", a.fd_error_exitcode, "Exit with N when fd leaks are reported")
      ->check(CLI::Range(0, 255))
      ->type_name("N");
  app->add_option("--live", a.live,
                  "How the live figures are shown: screen (full-screen, the default for attach on a terminal), "
                  "line (one status line, the default for launch on a terminal), blocks (the default elsewhere), auto")
      ->check(CLI::IsMember({"auto", "screen", "line", "blocks"}))
      ->type_name("MODE");
  a.engine = default_engine();
  app->add_option("--engine", a.engine,
                  "Event source: inject (an agent in the target, the default) or breakpoint (a ptrace stop per call)")
      ->check(CLI::IsMember({"breakpoint", "inject"}))
      ->type_name("breakpoint|inject");
  auto* no_fds = app->add_flag("--no-fds", a.no_fds, "Do not trace file descriptors");
  auto* fds_only = app->add_flag("--fds-only", a.fds_only, "Trace file descriptors, not the allocator");
  no_fds->excludes(fds_only);
  app->add_flag("--no-reachability", a.no_reachability,
                "Do not scan the target's memory at the end to classify never-freed blocks");
  app->add_flag("-q,--quiet", a.quiet, "No live figures on the terminal");
  app->add_flag("-v,--verbose", a.verbose, "Diagnostics about hooks and stepping");
  app->add_flag("--follow-forks", a.follow_forks,
                "Trace the children the program forks (and what they exec) too, each reported on its own");
}

void print_status(const track::Tracker& tracker, pid_t pid) {
  const auto& c = tracker.counters();
  util::eprint("\rptmem: {}: {} allocs, {} frees, {} live blocks ({} bytes), {} fds opened, {} closed\x1b[K",
             pid, c.alloc_calls, c.free_calls, c.live_blocks, c.live_bytes, c.fd_opened, c.fd_closed);
}

// One line on how the target ended, when that is news: a launched program that exits
// while traced just ends the trace, as it would without ptmem.
std::optional<std::string> ending_line(const ptrace::Outcome& out, bool launch) {
  using ptrace::Phase;
  Phase phase = out.ended_during.value_or(Phase::Trace);
  if (launch && phase == Phase::Trace && !out.signal) return std::nullopt;
  const char* when = phase == Phase::Attach ? "during the attach"
                     : phase == Phase::Scan ? "during the end scan"
                     : phase == Phase::Detach ? "during the detach"
                                              : "while traced";
  if (out.signal)
    return fmt::format("ptmem: process {} was killed by {} {}; the report holds what was recorded before",
                       out.pid, report::signal_name(*out.signal), when);
  if (out.exit_code)
    return fmt::format("ptmem: process {} exited with status {} {}; the report holds what was recorded before",
                       out.pid, *out.exit_code, when);
  return std::nullopt;
}

// Where each form of the report goes; "" is stderr.  Checked before tracing starts, so
// a long trace never ends with nowhere to write.
struct Output {
  report::Format format;
  std::string path;
};

std::optional<std::vector<Output>> plan_outputs(const TraceArgs& a, std::string* error) {
  std::vector<Output> out;
  std::vector<report::Format> formats;
  for (const auto& name : a.formats) formats.push_back(*report::parse_format(name));
  if (formats.empty()) formats.push_back(report::Format::Text);
  if (!a.output_dir.empty()) {
    if (!a.outputs.empty()) {
      *error = "give either -o or --output-dir, not both";
      return std::nullopt;
    }
    for (auto f : formats) out.push_back({f, a.output_dir + "/" + std::string(report::info(f).file_name)});
  } else if (a.outputs.empty()) {
    if (formats.size() > 1) {
      *error = "several --format need one -o each (in the same order) or --output-dir";
      return std::nullopt;
    }
    out.push_back({formats[0], ""});
  } else if (a.outputs.size() == formats.size()) {
    for (size_t i = 0; i < formats.size(); ++i) out.push_back({formats[i], a.outputs[i]});
  } else {
    *error = fmt::format("{} -o for {} --format: give one -o per --format, in the same order", a.outputs.size(),
                         formats.size());
    return std::nullopt;
  }
  if (!a.svg.empty()) out.push_back({report::Format::Svg, a.svg});
  for (const Output& o : out) {
    if (o.path.empty() && report::info(o.format).binary) {
      *error = fmt::format("--format {} is binary: give -o FILE or --output-dir", report::info(o.format).name);
      return std::nullopt;
    }
    if (!o.path.empty() && o.path != "-" && !util::check_writable(o.path, error)) return std::nullopt;
  }
  if (!a.gen_suppressions_file.empty() && !util::check_writable(a.gen_suppressions_file, error)) return std::nullopt;
  if (!a.record.empty() && !util::check_writable(a.record, error)) return std::nullopt;
  return out;
}

// --gen-suppressions: an entry per reported site, memcheck's way.
std::string suppressions_for(const report::Report& rep) {
  std::string out;
  auto add = [&](const report::Report& r) {
    const std::string name = r.target.command.substr(r.target.command.rfind('/') + 1);
    for (size_t i = 0; i < r.leaks.size(); ++i)
      out += report::valgrind_suppression(r.leaks[i], fmt::format("ptmem-{}-{}-site-{}", name, r.target.pid, i + 1));
  };
  add(rep);
  for (const auto& c : rep.children) add(c);
  return out;
}

// What the checkpoints gather for one traced process: the end scan and the fds at the end.
struct EndState {
  std::optional<track::Reachability> reachability;
  std::vector<proc::FdEntry> fds_at_end;
};

// A checkpoint of one traced process, the main one or a followed child (|child|: its fds
// when it starts being traced are inherited from its parent, not leaks of its own).
void take_checkpoint(const TraceArgs& a, const ptrace::Session& session, pid_t pid, ptrace::Session::Checkpoint cp,
                     track::Tracker& tracker, EndState& end, bool child) {
  // The end: every thread is stopped and the memory is still there, so which blocks are
  // still reachable can be read now (a pause of the target proportional to its memory).
  if (cp == ptrace::Session::Checkpoint::Final) {
    util::test_pause("scan");
    // The names of the threads still running (those that ended were named at their end).
    for (pid_t tid : proc::list_tasks(pid))
      if (auto comm = proc::read_file(fmt::format("/proc/{}/task/{}/comm", pid, tid), 64); comm && !comm->empty())
        tracker.on_thread_name(tid, std::string_view(*comm).substr(0, comm->find('\n')));
  }
  if (cp == ptrace::Session::Checkpoint::Final && !a.fds_only && !a.no_reachability)
  {
    auto t0 = std::chrono::steady_clock::now();
    end.reachability = scan_reachability(pid, tracker, session.thread_registers(pid), session.exited_thread_registers(pid));
    if (a.verbose && end.reachability)
      util::eprint("ptmem: reachability: {} MiB of roots and {} blocks scanned in {} ms\n",
                 end.reachability->root_bytes_scanned() >> 20, tracker.allocations().size(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
  }
  bool readable = false;
  auto fds = proc::read_fds(pid, proc::kDefaultRoot, &readable);
  if (!readable) return;
  tracker.reconcile_fds(fds, cp == ptrace::Session::Checkpoint::Exec);
  if (cp == ptrace::Session::Checkpoint::Launched)
    tracker.mark_inherited(session.outcome().inherited_fds);
  if (child && cp == ptrace::Session::Checkpoint::Attached) {
    std::vector<int> open;
    for (auto& f : fds) open.push_back(f.fd);
    tracker.mark_inherited(open);
  }
  if (cp == ptrace::Session::Checkpoint::Final) end.fds_at_end = std::move(fds);
}

// --follow-forks: each followed child's own tables (the session's on_child_start order),
// checkpoints and report.
class ChildTraces {
 public:
  ChildTraces(const TraceArgs& a, ptrace::Session& session) : a_(a), session_(session) {
    if (!a.follow_forks) return;
    session.on_child_start = [this](pid_t pid, pid_t) {
      // Each child's modules stay open until the report: a program that runs many
      // commands needs more fds than the usual 1024.  Raised only now, after the launch,
      // so that the traced program keeps the limit it was given.
      if (children_.empty()) {
        rlimit rl;
        if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
          rl.rlim_cur = rl.rlim_max;
          ::setrlimit(RLIMIT_NOFILE, &rl);
        }
      }
      Child& c = children_.emplace_back();
      c.pid = pid;
      return ptrace::Session::ChildTables{c.tracker, c.stacks};
    };
  }
  /// Takes the checkpoint if |pid| is a child; false if it is the main process.
  bool checkpoint(pid_t pid, ptrace::Session::Checkpoint cp) {
    for (auto it = children_.rbegin(); it != children_.rend(); ++it)  // latest first: pids get reused
      if (it->pid == pid) {
        take_checkpoint(a_, session_, pid, cp, it->tracker, it->end, true);
        return true;
      }
    return false;
  }
  /// Adds each child's report to |rep| (built like the main one with |ropt|).
  void add_reports(report::Report& rep, report::ReportOptions ropt) const {
    rep.children_traced = a_.follow_forks;
    ropt.trend_of = {};  // the live view watches the main process's tables only
    for (size_t i = 0; i < children_.size() && i < session_.child_count(); ++i) {
      const Child& c = children_[i];
      const ptrace::Outcome& out = session_.child_outcome(i);
      symbols::Symbolizer symbolizer(session_.child_modules(i));
      report::SymbolizerFrames frames(symbolizer);
      report::TargetInfo target{out.pid, out.command, out.exit_code, out.signal, out.detached, out.argv};
      ropt.reachability = c.end.reachability ? &*c.end.reachability : nullptr;
      rep.children.push_back(report::build_report(c.tracker, c.stacks, frames, target, c.end.fds_at_end, ropt));
    }
  }

 private:
  struct Child {
    pid_t pid = 0;
    track::Tracker tracker;
    track::StackTable stacks;
    EndState end;
  };
  const TraceArgs& a_;
  ptrace::Session& session_;
  std::deque<Child> children_;  // the session holds references: never moved
};

// How the live figures are shown.
enum class LiveMode { None, Screen, Line, Blocks };

std::optional<LiveMode> live_mode(const TraceArgs& a, bool launch, bool interval, std::string* error) {
  const bool terminal = ::isatty(0) && ::isatty(2);
  if (a.quiet && a.live != "auto") {
    *error = "-q and --live exclude each other";
    return std::nullopt;
  }
  if (a.live == "screen" && !terminal) {
    *error = "--live screen needs a terminal on stdin and stderr";
    return std::nullopt;
  }
  if (a.live == "screen" && !interval) {
    *error = "--live screen needs an --interval above 0";
    return std::nullopt;
  }
  if (a.quiet || !interval) return LiveMode::None;
  if (a.live == "screen") return LiveMode::Screen;
  if (a.live == "line") return LiveMode::Line;
  if (a.live == "blocks") return LiveMode::Blocks;
  // A launched program shares the terminal (its output, its keys): one line, not a screen.
  if (!launch && terminal) return LiveMode::Screen;
  return ::isatty(2) ? LiveMode::Line : LiveMode::Blocks;
}

// |terminal|: `ptmem stats` opened this trace on its screen (Enter on a process); the live
// view is drawn there, and what would go to stderr (the report included) is left in
// |paged| for the stats view to page through.
int run_trace(TraceArgs& a, bool launch, ui::Terminal* terminal = nullptr, std::string* paged = nullptr) {
  // The screen, from the attach to the report.  While it owns the terminal, what ptmem
  // writes to stderr is kept, and written (or paged, under `stats`) once it is gone,
  // whichever way this returns.
  std::optional<util::StderrCapture> capture;
  std::unique_ptr<ui::Terminal> own_terminal;
  std::unique_ptr<LiveScreen> screen;
  auto give_back = [&] {
    if (!capture) return;
    screen.reset();
    own_terminal.reset();
    std::string held = capture->take();
    capture.reset();
    if (paged) *paged = std::move(held);
    else util::eprint("{}", held);
  };
  struct Guard {
    decltype(give_back)& f;
    ~Guard() { f(); }
  } guard{give_back};
  if (terminal) capture.emplace();
  std::string error;
  if (!a.output_dir.empty() && ::mkdir(a.output_dir.c_str(), 0777) != 0 && errno != EEXIST) {
    util::eprint("ptmem: error: --output-dir {}: {}\n", a.output_dir, std::strerror(errno));
    return 1;
  }
  auto outputs = plan_outputs(a, &error);
  if (!outputs) {
    util::eprint("ptmem: error: {}\n", error);
    return 1;
  }
  report::Suppressions suppressions;
  if (!a.no_default_suppressions) suppressions.add_defaults();
  for (const auto& file : a.suppressions)
    if (!suppressions.load_file(file, &error)) {
      util::eprint("ptmem: error: --suppressions: {}\n", error);
      return 1;
    }
  const report::KindMask shown = *report::parse_kinds(a.show_kinds, nullptr);
  ptrace::TraceOptions opt;
  opt.track_alloc = !a.fds_only;
  opt.track_fds = !a.no_fds;
  opt.depth = a.depth;
  opt.quiet = a.quiet;
  opt.verbose = a.verbose;
  opt.engine = a.engine == "inject" ? ptrace::Engine::Inject : ptrace::Engine::Breakpoint;
  if (!a.duration.empty()) opt.duration = util::parse_duration(a.duration);
  opt.follow_forks = a.follow_forks;
  if (a.interval != "0") opt.tick = *util::parse_duration(a.interval);
  else opt.tick = std::chrono::microseconds(0);

  track::Tracker tracker;
  track::StackTable stacks;
  ptrace::Session session(opt, tracker, stacks);
  ptrace::Session::install_signal_handlers();

  EndState end;
  ChildTraces children(a, session);
  session.on_checkpoint = [&](pid_t pid, ptrace::Session::Checkpoint cp) {
    if (!children.checkpoint(pid, cp)) take_checkpoint(a, session, pid, cp, tracker, end, false);
  };
  // Every interval: the full-screen view, one status line, or a block on stderr; and the
  // --record line.
  LiveMode mode = LiveMode::Screen;
  if (!terminal) {
    auto m = live_mode(a, launch, opt.tick.count() > 0, &error);
    if (!m) {
      util::eprint("ptmem: error: {}\n", error);
      return kUsageExit;
    }
    mode = *m;
  }
  const bool live = mode == LiveMode::Line;
  LiveView::Options lo;
  lo.blocks = mode == LiveMode::Blocks;
  lo.record = a.record;
  lo.depth = a.depth;
  LiveView view(lo, tracker, stacks, session);
  if (!view.open(&error)) {
    util::eprint("ptmem: error: --record: {}\n", error);
    return 1;
  }
  if (opt.tick.count() > 0)
    session.on_tick = [&] {
      if (live) print_status(tracker, session.outcome().pid);
      if (lo.blocks || !lo.record.empty() || screen) view.tick();
      if (screen) screen->tick();
    };

  // The report of the tables as they are, with what the checkpoints gathered in |state|.
  auto build = [&](const ptrace::Outcome& out, const EndState& state) {
    symbols::Symbolizer symbolizer(session.modules());
    report::SymbolizerFrames frames(symbolizer);
    report::TargetInfo target{out.pid, out.command, out.exit_code, out.signal, out.detached, out.argv};
    report::ReportOptions ropt;
    ropt.depth = a.depth;
    ropt.memory = !a.fds_only;
    ropt.fds = !a.no_fds;
    ropt.reachability = state.reachability ? &*state.reachability : nullptr;
    for (const Output& o : *outputs) ropt.allocated_sites |= report::info(o.format).needs_allocated;
    if (view.active())
      ropt.trend_of = [&view](track::StackId id) -> std::optional<report::SiteTrend> {
        auto g = view.growth_of(id);
        return report::SiteTrend{g.bytes_per_s, g.fds_per_s, g.steadiness, g.suspect(), g.oldest_seconds};
      };
    auto rep = report::build_report(tracker, stacks, frames, target, state.fds_at_end, ropt);
    children.add_reports(rep, ropt);
    suppressions.apply(rep);
    report::hide_kinds(rep, shown);
    return rep;
  };
  auto write_outputs = [&](const report::Report& rep) {
    bool ok = true;
    for (const Output& o : *outputs) {
      std::string text = report::render(rep, o.format);
      if (o.path.empty()) {
        util::eprint("{}", text);
      } else if (!util::write_file_atomically(o.path, text, &error)) {
        util::eprint("ptmem: error: {}\n", error);
        ok = false;
      }
    }
    return ok;
  };
  // SIGUSR1: the report of the moment, to the same places, the target running on.  No end
  // scan (it would stop the target), so kinds are unclassified; fds as /proc has them now.
  session.on_snapshot = [&] {
    EndState now;
    now.fds_at_end = proc::read_fds(session.outcome().pid);
    auto rep = build(session.outcome(), now);
    if (write_outputs(rep))
      util::eprint("ptmem: report of the moment written: {} bytes in {} blocks live, {} fds open\n",
                   rep.summary.counters.live_bytes, rep.summary.counters.live_blocks, rep.summary.fd_open_at_end);
  };

  auto err = launch ? session.launch(a.program) : session.attach(a.pid);
  if (err) {
    util::eprint("ptmem: error: {}\n", *err);
    return 1;
  }
  pid_t pid = session.outcome().pid;
  if (mode == LiveMode::Screen) {
    ui::Terminal* term = terminal;
    if (!term) {
      own_terminal = ui::Terminal::open(ui::Terminal::Stream::Stderr, &error);
      if (!own_terminal) util::eprint("ptmem: {}; no live view\n", error);
      term = own_terminal.get();
    }
    if (term) {
      if (!capture) capture.emplace();
      const std::string& command = session.outcome().command;
      screen = std::make_unique<LiveScreen>(
          *term, view,
          fmt::format("ptmem {} {} ({})", launch ? "launch" : "attach", pid, command.substr(command.rfind('/') + 1)));
      session.on_poll = [&] { screen->poll(); };
    }
  }
  if (launch) util::eprint("ptmem: tracing {}\n", pid);
  else
    util::eprint("ptmem: attached to process {} ({} thread{})\n", pid, session.thread_count(),
               session.thread_count() == 1 ? "" : "s");

  session.run();
  if (screen) screen->ending();
  const auto& out = session.outcome();
  if (live) util::eprint("\r\x1b[K");
  if (out.detached) util::eprint("ptmem: detached from process {}\n", pid);
  else if (auto line = ending_line(out, launch)) util::eprint("{}\n", *line);

  auto rep = build(out, end);
  bool failed = !write_outputs(rep);
  view.finish(report::to_json_text(rep));
  if (a.gen_suppressions && a.gen_suppressions->count() > 0) {
    std::string entries = suppressions_for(rep);
    if (a.gen_suppressions_file.empty()) util::eprint("{}", entries);
    else if (!util::write_file_atomically(a.gen_suppressions_file, entries, &error)) {
      util::eprint("ptmem: error: {}\n", error);
      failed = true;
    }
  }
  give_back();  // the report is written: the terminal goes back to the user
  if (failed) return 1;

  // What the exit codes count: only what the report shows (not suppressed, a shown kind).
  auto any = [](const report::Report& r, auto leaked) {
    if (leaked(r)) return true;
    for (const auto& c : r.children)
      if (leaked(c)) return true;
    return false;
  };
  if (a.error_exitcode >= 0 && any(rep, [](const report::Report& r) { return r.summary.leaked_blocks > 0; }))
    return a.error_exitcode;
  if (a.fd_error_exitcode >= 0 && any(rep, [](const report::Report& r) { return r.summary.fd_leaked > 0; }))
    return a.fd_error_exitcode;
  if (!launch) return 0;
  if (out.exit_code) return *out.exit_code;
  if (out.signal) return 128 + *out.signal;
  return 0;
}

}  // namespace

std::string trace_on_terminal(pid_t pid, ui::Terminal& terminal) {
  TraceArgs a;
  a.pid = pid;
  a.engine = default_engine();
  // Every kind: a server's growing memory is often still reachable (held in a container),
  // and here there is no --show-kinds to ask for it.
  a.show_kinds = "all";
  std::string shown;
  int status = run_trace(a, false, &terminal, &shown);
  // The stats view's own handlers are back from here: Ctrl-C in the pager quits ptmem.
  stats::install_stop_handlers();
  std::vector<std::string> lines;
  for (size_t at = 0; at < shown.size();) {
    size_t end = shown.find('\n', at);
    if (end == std::string::npos) end = shown.size();
    lines.push_back(shown.substr(at, end - at));
    at = end + 1;
  }
  if (status != 0 && lines.size() == 1) return lines.front();  // the attach failed: say why
  ui::Pager pager(fmt::format("ptmem: the report of process {}", pid), lines, "q, Enter or Esc: back to the processes");
  pager.draw(terminal);
  while (!stats::stop_requested()) {
    int ch = terminal.key(200);
    if (ch < 0) continue;
    if (!pager.handle(ch, terminal)) break;
    pager.draw(terminal);
  }
  return fmt::format("traced {}: {}", pid, status == 0 ? "detached, report read" : "ended");
}

Subcommand add_launch_command(CLI::App& root) {
  auto args = std::make_shared<TraceArgs>();
  auto* app = root.add_subcommand("launch", "Run a program traced and report its leaks");
  add_common_options(app, *args);
  app->add_option("program", args->program, "PROGRAM [ARGS...]")->required()->type_name("PROGRAM ARGS");
  app->prefix_command(false);
  app->positionals_at_end(true);
  return {app, [args] { return run_trace(*args, true); }};
}

Subcommand add_attach_command(CLI::App& root) {
  auto args = std::make_shared<TraceArgs>();
  auto* app = root.add_subcommand("attach", "Trace a running process, detach, and report its leaks");
  add_common_options(app, *args);
  app->add_option("pid", args->pid, "Process id")->required()->check(positive_integer())->type_name("PID");
  return {app, [args] { return run_trace(*args, false); }};
}

}  // namespace ptmem::cli
