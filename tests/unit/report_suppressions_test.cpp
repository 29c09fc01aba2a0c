#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "ptmem/report/suppressions.hpp"
#include "../support/process.hpp"

using namespace ptmem;
using report::Frame;
using report::Leak;
using report::Report;
using report::Suppression;
using report::Suppressions;

namespace {

const std::string kLibc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
const std::string kLibstdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30";
const std::string kLd = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
const std::string kApp = "/work/app/widget";

Frame fr(std::string function, std::string module = kApp, std::string file = "", int line = 0,
         bool inlined = false) {
  Frame f;
  f.function = std::move(function);
  f.module = std::move(module);
  f.file = std::move(file);
  f.line = line;
  f.inlined = inlined;
  return f;
}

Leak leak(std::vector<Frame> stack, std::string kind = "definitely_lost", uint64_t blocks = 1,
          uint64_t bytes = 8) {
  return Leak{std::move(kind), blocks, bytes, std::move(stack)};
}

Suppressions loaded(const std::string& text, const std::string& name = "t.supp") {
  Suppressions s;
  std::string error;
  bool ok = s.load_text(text, name, &error);
  INFO(error);
  REQUIRE(ok);
  return s;
}

std::string load_error(const std::string& text, const std::string& name = "bad.supp") {
  Suppressions s;
  std::string error;
  CHECK_FALSE(s.load_text(text, name, &error));
  CHECK(s.all().empty());
  return error;
}

// The name of the suppression matching |l|, or "-" for none.
std::string matched(const Suppressions& s, const Leak& l) {
  const Suppression* m = s.match(l);
  return m ? m->name : "-";
}

// Runs memcheck on a sample and returns its generated suppressions, each named by |prefix|
// and its position (valgrind names them all "<insert_a_suppression_name_here>").
std::string valgrind_suppressions(const std::string& sample, const std::string& prefix) {
  std::string log = test::temp_dir() + "/" + sample + ".log";
  std::string valgrind = test::find_in_path("valgrind");
  REQUIRE_MESSAGE(!valgrind.empty(), "valgrind is not installed (make deps installs it)");
  auto r = test::run({valgrind, "--leak-check=full", "--show-leak-kinds=all", "--gen-suppressions=all",
                      "--log-file=" + log, test::build_path("samples/" + sample)});
  INFO(r.err);
  REQUIRE(r.status == 0);
  std::string entries = test::supp_entries(test::read_text_file(log));
  std::string named;
  int n = 0;
  std::istringstream in(entries);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("<insert_a_suppression_name_here>") != std::string::npos)
      line = "   " + prefix + std::to_string(++n);
    named += line + "\n";
  }
  return named;
}

}  // namespace

TEST_CASE("suppress: memcheck's own --gen-suppressions entries match ptmem's sites of trace_cxx") {
  std::string text = valgrind_suppressions("trace_cxx", "cxx");
  // Six reachable blocks (the pointers are kept in a global): leak_new's two, leak_containers'
  // four, among them std::string's and std::vector's buffers with the library frames.
  Suppressions s = loaded(text, "trace_cxx.supp");
  REQUIRE(s.all().size() == 6);
  for (const Suppression& e : s.all()) {
    CHECK(e.kinds == std::vector<std::string>{"still_reachable"});
    CHECK(e.frames.front().pattern.substr(0, 3) == "_Zn");  // the allocator line comes first
  }
  // The stacks ptmem reports for the same program: caller first, library frames left out.
  // (DWARF names: no parameter list, where valgrind's demangle to "leak_new()".)
  Leak new_int = leak({fr("leak_new", kApp, "samples/trace_cxx.cpp", 21), fr("main", kApp, "samples/trace_cxx.cpp", 42)},
                      "still_reachable", 1, 4);
  Leak vec_buf = leak({fr("leak_containers", kApp, "samples/trace_cxx.cpp", 27),
                       fr("main", kApp, "samples/trace_cxx.cpp", 43)},
                      "still_reachable", 1, 400);
  CHECK(matched(s, new_int).substr(0, 3) == "cxx");
  CHECK(matched(s, vec_buf).substr(0, 3) == "cxx");
  // Names with the parameter list (symbol tables) match too.
  CHECK(matched(s, leak({fr("leak_new()"), fr("main")}, "still_reachable")) != "-");
  // Another kind, another function, or main alone: not these entries.
  CHECK(matched(s, leak({fr("leak_new"), fr("main")}, "definitely_lost")) == "-");
  CHECK(matched(s, leak({fr("leak_other"), fr("main")}, "still_reachable")) == "-");
  CHECK(matched(s, leak({fr("leak_new(int)"), fr("main")}, "still_reachable")) == "-");
  CHECK(matched(s, leak({fr("main")}, "still_reachable")) == "-");
  CHECK(matched(s, leak({fr("main"), fr("leak_new")}, "still_reachable")) == "-");
}

TEST_CASE("suppress: memcheck's own entries for trace_malloc's C leaks, one per allocator") {
  std::string text = valgrind_suppressions("trace_malloc", "c");
  Suppressions s = loaded(text, "trace_malloc.supp");
  // small, calloc, zero, loop, posix_memalign, aligned_alloc, valloc (all reachable through
  // keep[]): seven entries, each beginning with its own allocator's line.
  REQUIRE(s.all().size() == 7);
  for (const char* fn : {"leak_small", "leak_calloc", "leak_zero", "leak_loop", "leak_aligned"}) {
    INFO(fn);
    CHECK(matched(s, leak({fr(fn, kApp, "trace_malloc.c", 20), fr("main")}, "still_reachable")) != "-");
  }
  CHECK(matched(s, leak({fr("no_leaks"), fr("main")}, "still_reachable")) == "-");
}

TEST_CASE("suppress: memcheck's own entry for trace_threads' leak matches without start_thread and clone") {
  Suppressions s = loaded(valgrind_suppressions("trace_threads", "thr"), "trace_threads.supp");
  // memcheck frees the threads' DTVs at exit (ptmem reports them at pthread_create's line):
  // one entry, malloc / worker / start_thread / clone.
  REQUIRE(s.all().size() == 1);
  CHECK(s.all()[0].frames.size() == 4);
  // ptmem's site: worker alone, the runtime below it left out.
  CHECK(matched(s, leak({fr("worker", kApp, "samples/trace_threads.c", 24)}, "still_reachable", 36, 1632)) ==
        "thr1");
  CHECK(matched(s, leak({fr("worker"), fr("main")}, "still_reachable")) == "-");
  CHECK(matched(s, leak({fr("main")}, "still_reachable")) == "-");
}

TEST_CASE("suppress: valgrind syntax, wildcards and '...' in every position") {
  Suppressions s = loaded(R"(# a comment
{
   exact
   Memcheck:Leak
   fun:alpha
   fun:main
}

{
   star-middle
   Memcheck:Leak
   match-leak-kinds: all
   fun:be*ta
}
{
   question
   Memcheck:Leak
   fun:gam?a
}
{
   ellipsis-first
   Memcheck:Leak
   ...
   fun:delta_root
}
{
   ellipsis-middle
   Memcheck:Leak
   fun:eps
   ...
   fun:eps_root
}
{
   ellipsis-last
   Memcheck:Leak
   fun:zeta
   ...
}
{
   obj-star
   Memcheck:Leak
   obj:*/libplugin*.so
   fun:host
}
{
   src
   Memcheck:Leak
   src:eta.c:7
}
{
   escaped
   Memcheck:Leak
   fun:theta\*
}
)");
  REQUIRE(s.all().size() == 9);
  CHECK(s.all()[0].line == 2);
  CHECK(s.all()[1].kinds.size() == 4);
  CHECK(matched(s, leak({fr("alpha"), fr("main")})) == "exact");
  CHECK(matched(s, leak({fr("alpha"), fr("main"), fr("deeper")})) == "exact");  // a prefix
  CHECK(matched(s, leak({fr("alpha")})) == "-");          // the entry is longer than the stack
  CHECK(matched(s, leak({fr("alpha"), fr("mainly")})) == "-");
  CHECK(matched(s, leak({fr("beta")})) == "star-middle");
  CHECK(matched(s, leak({fr("be_long_ta")}, "still_reachable")) == "star-middle");
  CHECK(matched(s, leak({fr("gamma")})) == "question");
  CHECK(matched(s, leak({fr("gama")})) == "-");
  CHECK(matched(s, leak({fr("delta_root")})) == "ellipsis-first");  // '...' matches no frame
  CHECK(matched(s, leak({fr("a"), fr("b"), fr("delta_root"), fr("x")})) == "ellipsis-first");
  CHECK(matched(s, leak({fr("eps"), fr("eps_root")})) == "ellipsis-middle");
  CHECK(matched(s, leak({fr("eps"), fr("a"), fr("b"), fr("eps_root")})) == "ellipsis-middle");
  CHECK(matched(s, leak({fr("eps"), fr("a")})) == "-");
  CHECK(matched(s, leak({fr("zeta")})) == "ellipsis-last");
  CHECK(matched(s, leak({fr("zeta"), fr("q"), fr("r")})) == "ellipsis-last");
  CHECK(matched(s, leak({fr("plugin_fn", "/opt/x/libplugin_a.so"), fr("host")})) == "obj-star");
  CHECK(matched(s, leak({fr("plugin_fn", "/opt/x/libother.so"), fr("host")})) == "-");
  CHECK(matched(s, leak({fr("f", kApp, "/src/eta.c", 7)})) == "src");
  CHECK(matched(s, leak({fr("f", kApp, "/src/eta.c", 8)})) == "-");
  CHECK(matched(s, leak({fr("theta*")})) == "escaped");
  CHECK(matched(s, leak({fr("thetaX")})) == "-");
  // Inlined frames are frames of their own, as memcheck shows them.
  CHECK(matched(s, leak({fr("eps", kApp, "", 0, true), fr("eps_root")})) == "ellipsis-middle");
  CHECK(matched(s, leak({fr("inl", kApp, "", 0, true), fr("alpha"), fr("main")})) == "-");
}

TEST_CASE("suppress: match-leak-kinds filters by kind; other tools' entries are skipped") {
  Suppressions s = loaded(R"(
{
   helgrind
   Helgrind:Race
   fun:f
}
{
   param
   Memcheck:Param
   write(buf)
   fun:f
}
{
   def-poss
   Memcheck:Leak
   match-leak-kinds: definite,possible
   fun:f
}
{
   reach
   Memcheck,Addrcheck:Leak
   match-leak-kinds: reachable
   fun:f
}
{
   none
   Memcheck:Leak
   match-leak-kinds: none
   fun:g
}
)");
  REQUIRE(s.all().size() == 3);
  CHECK(matched(s, leak({fr("f")}, "definitely_lost")) == "def-poss");
  CHECK(matched(s, leak({fr("f")}, "possibly_lost")) == "def-poss");
  CHECK(matched(s, leak({fr("f")}, "indirectly_lost")) == "-");
  CHECK(matched(s, leak({fr("f")}, "still_reachable")) == "reach");
  // Without the reachability scan the kind is unknown: a kind list cannot rule it out.
  CHECK(matched(s, leak({fr("f")}, "unclassified")) == "def-poss");
  CHECK(matched(s, leak({fr("g")}, "unclassified")) == "-");
  CHECK(matched(s, leak({fr("g")}, "definitely_lost")) == "-");
}

TEST_CASE("suppress: allocator and runtime lines of valgrind entries stand for frames ptmem leaves out") {
  Suppressions s = loaded(R"(
{
   new-then-user
   Memcheck:Leak
   fun:_Znwm
   fun:_ZN3Foo4makeEi
   fun:main
}
{
   hand-written
   Memcheck:Leak
   fun:*alloc
   obj:/usr/lib/x86_64-linux-gnu/libglib-2.0.so*
   fun:user_fn
}
{
   thread
   Memcheck:Leak
   fun:malloc
   fun:worker
   fun:start_thread
   fun:clone3
}
{
   dtv
   Memcheck:Leak
   fun:calloc
   fun:calloc
   fun:allocate_dtv
   fun:_dl_allocate_tls
   fun:allocate_stack
   fun:pthread_create@@GLIBC_2.34
   fun:start_threads
}
{
   runtime-only
   Memcheck:Leak
   fun:malloc
   fun:_IO_file_doallocate
}
)");
  CHECK(matched(s, leak({fr("Foo::make(int)"), fr("main")})) == "new-then-user");
  CHECK(matched(s, leak({fr("Foo::make(int)"), fr("other")})) == "-");
  // ptmem drops start_thread/clone3 below the thread's function: the entry still matches.
  CHECK(matched(s, leak({fr("worker")})) == "thread");
  CHECK(matched(s, leak({fr("worker"), fr("main")})) == "-");
  // memcheck's entry for pthread_create's DTV: six lines of runtime, then the program.
  CHECK(matched(s, leak({fr("start_threads"), fr("main")})) == "dtv");
  // An entry never matches through skipped runtime lines alone: not every leak.
  CHECK(matched(s, leak({fr("main")})) == "-");
  // A runtime line may also match a frame that is really there (stacks of the runtime only).
  CHECK(matched(s, leak({fr("_IO_file_doallocate", kLibc)})) == "runtime-only");
  // A wildcard obj: line is not an allocator line: it must match a frame.
  CHECK(matched(s, leak({fr("user_fn")})) == "-");
  CHECK(matched(s, leak({fr("g_malloc", "/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0"), fr("user_fn")})) ==
        "hand-written");
}

TEST_CASE("suppress: malformed valgrind files are errors with FILE:LINE") {
  CHECK(load_error("{\n  x\n  Memcheck:Leak\n  fun:f\n") == "bad.supp:1: unterminated suppression 'x' (no '}')");
  CHECK(load_error("\n{\n  x\n  Memcheck:Leak\n  fun:f\n  bogus:f\n}\n") ==
        "bad.supp:6: expected fun:, obj:, src:, '...' or '}', got 'bogus:f'");
  CHECK(load_error("{\n  x\n  Memcheck\n  fun:f\n}\n") ==
        "bad.supp:3: expected TOOL:KIND (e.g. Memcheck:Leak), got 'Memcheck'");
  CHECK(load_error("{\n  x\n  Memcheck:Leak\n  match-leak-kinds: definite,lost\n  fun:f\n}\n") ==
        "bad.supp:4: unknown leak kind 'lost' (definite, indirect, possible, reachable, all, none)");
  CHECK(load_error("{\n  x\n  Memcheck:Leak\n}\n") == "bad.supp:4: suppression 'x' has no frame lines");
  CHECK(load_error("{\n}\n") == "bad.supp:2: suppression without a name");
  CHECK(load_error("{\n  a\n  Memcheck:Leak\n  fun:f\n}\nfun:g\n") ==
        "bad.supp:6: expected '{' to start a suppression, got 'fun:g'");
  // Nothing of a bad file is kept, even its good entries.
  Suppressions s;
  std::string error;
  CHECK_FALSE(s.load_text("{\n a\n Memcheck:Leak\n fun:f\n}\n{\n b\n", "x", &error));
  CHECK(s.all().empty());
  CHECK_FALSE(s.load_file("/nonexistent/ptmem.supp", &error));
  CHECK(error == "/nonexistent/ptmem.supp: cannot open: No such file or directory");
  CHECK_FALSE(s.load_file("/", &error));
  CHECK(error == "/: is a directory");
}

TEST_CASE("suppress: LeakSanitizer leak: patterns against function, module and source file") {
  std::string dir = test::temp_dir();
  std::string path = dir + "/lsan.supp";
  std::ofstream(path) << R"(# LSan, shared with TSan
race:whatever
leak:^exact_fn$
leak:libleaky.so
leak:third_party/*.cc
leak:mid*dle
leak:^prefix_
leak:_suffix$
)";
  Suppressions s;
  std::string error;
  REQUIRE(s.load_file(path, &error));
  REQUIRE(s.all().size() == 6);
  CHECK(s.all()[0].source == Suppression::Source::LeakSanitizer);
  CHECK(s.all()[0].line == 3);
  CHECK(s.all()[0].file == path);
  CHECK(matched(s, leak({fr("exact_fn")})) == "^exact_fn$");
  CHECK(matched(s, leak({fr("exact_fn2")})) == "-");
  // Any frame of the site, not only the first.
  CHECK(matched(s, leak({fr("user"), fr("exact_fn")})) == "^exact_fn$");
  CHECK(matched(s, leak({fr("f", "/opt/lib/libleaky.so.1")})) == "libleaky.so");
  CHECK(matched(s, leak({fr("f", kApp, "/src/third_party/zlib/inflate.cc", 3)})) == "third_party/*.cc");
  CHECK(matched(s, leak({fr("f", kApp, "/src/third_party/zlib/inflate.c", 3)})) == "-");
  CHECK(matched(s, leak({fr("a_middle_b")})) == "mid*dle");
  CHECK(matched(s, leak({fr("prefix_x")})) == "^prefix_");
  CHECK(matched(s, leak({fr("x_prefix_x")})) == "-");
  CHECK(matched(s, leak({fr("x_suffix")})) == "_suffix$");
  CHECK(matched(s, leak({fr("x_suffix_x")})) == "-");
  CHECK(matched(s, leak({fr("user", kApp, "/src/app.c", 1)})) == "-");

  CHECK(load_error("leak:ok\nfrobnicate:x\n", "l.supp") == "l.supp:2: unknown suppression type 'frobnicate'");
  CHECK(load_error("leak:ok\njust text\n", "l.supp") ==
        "l.supp:2: expected TYPE:PATTERN (e.g. leak:libfoo.so), got 'just text'");
  CHECK(load_error("leak:\n", "l.supp") == "l.supp:1: leak: without a pattern");
}

namespace {

// A classified report: three sites (two of them suppressible), the totals add up.
Report sample_report() {
  Report r;
  r.summary.classified = true;
  r.leaks = {leak({fr("noisy_lib_fn"), fr("main")}, "definitely_lost", 3, 300),
             leak({fr("user_fn"), fr("main")}, "definitely_lost", 2, 200),
             leak({fr("noisy_lib_fn"), fr("other")}, "still_reachable", 5, 50),
             leak({fr("cache_init")}, "still_reachable", 1, 10)};
  r.summary.leaked_blocks = 11;
  r.summary.leaked_bytes = 560;
  r.summary.leak_sites = 4;
  r.summary.by_kind[0] = {5, 500};
  r.summary.by_kind[3] = {6, 60};
  r.fd_leaks.resize(2);
  r.summary.fd_leaked = 2;
  return r;
}

struct Totals {
  uint64_t sites, blocks, bytes;
};

// What is left leaked and what was taken out.
void check_totals(const Report& r, Totals left, Totals suppressed) {
  CHECK(r.summary.leak_sites == left.sites);
  CHECK(r.summary.leaked_blocks == left.blocks);
  CHECK(r.summary.leaked_bytes == left.bytes);
  CHECK(r.suppressed_sites == suppressed.sites);
  CHECK(r.suppressed_blocks == suppressed.blocks);
  CHECK(r.suppressed_bytes == suppressed.bytes);
}

void check_use(const report::SuppressionUse& use, const std::string& name, int line, Totals t) {
  CHECK(use.name == name);
  CHECK(use.file == "app.supp");
  CHECK(use.line == line);
  CHECK(use.sites == t.sites);
  CHECK(use.blocks == t.blocks);
  CHECK(use.bytes == t.bytes);
}

}  // namespace

TEST_CASE("suppress: apply() moves the suppressed sites' totals, children included") {
  Suppressions s = loaded(R"({
   noisy
   Memcheck:Leak
   fun:noisy_lib_fn
}
{
   cache
   Memcheck:Leak
   fun:cache_init
}
{
   never
   Memcheck:Leak
   fun:nothing_matches
}
)",
                          "app.supp");
  Report r = sample_report();
  r.children.push_back(sample_report());
  r.children[0].leaks.pop_back();  // no cache_init in the child
  r.children[0].summary.leaked_blocks -= 1;
  r.children[0].summary.leaked_bytes -= 10;
  r.children[0].summary.leak_sites -= 1;
  r.children[0].summary.by_kind[3] = {5, 50};
  s.apply(r);

  REQUIRE(r.leaks.size() == 1);
  CHECK(r.leaks[0].stack[0].function == "user_fn");
  check_totals(r, {1, 2, 200}, {3, 9, 360});
  CHECK(r.summary.by_kind[0].blocks == 2);
  CHECK(r.summary.by_kind[0].bytes == 200);
  CHECK(r.summary.by_kind[3].blocks == 0);
  CHECK(r.summary.by_kind[3].bytes == 0);
  REQUIRE(r.suppressions_used.size() == 2);
  check_use(r.suppressions_used[0], "noisy", 1, {2, 8, 350});
  check_use(r.suppressions_used[1], "cache", 6, {1, 1, 10});
  // Fd leaks are never suppressed.
  CHECK(r.fd_leaks.size() == 2);
  CHECK(r.summary.fd_leaked == 2);

  const Report& c = r.children[0];
  REQUIRE(c.leaks.size() == 1);
  check_totals(c, {1, 2, 200}, {2, 8, 350});
  CHECK(c.summary.by_kind[3].blocks == 0);
  REQUIRE(c.suppressions_used.size() == 1);
  check_use(c.suppressions_used[0], "noisy", 1, {2, 8, 350});

  // Unclassified reports have no by_kind totals to move.
  Report u;
  u.leaks = {leak({fr("cache_init")}, "unclassified", 4, 40)};
  u.summary.leaked_blocks = 4;
  u.summary.leaked_bytes = 40;
  u.summary.leak_sites = 1;
  s.apply(u);
  CHECK(u.leaks.empty());
  check_totals(u, {0, 0, 0}, {1, 4, 40});
  CHECK(u.summary.by_kind[3].blocks == 0);
}

TEST_CASE("suppress: the defaults take out the runtimes' one-time blocks, never the program's") {
  Suppressions d;
  d.add_defaults();
  REQUIRE_FALSE(d.all().empty());
  for (const Suppression& s : d.all()) {
    CHECK(s.file == "<default>");
    CHECK(s.source == Suppression::Source::Default);
  }
  // trace_cxx as ptmem reports it: libstdc++'s emergency exception pool (an unnamed frame in
  // libstdc++, then the loader running its constructor) and the program's own leaks.
  Report r;
  r.summary.classified = true;
  r.leaks = {leak({fr("", kLibstdcxx), fr("call_init", kLd, "./elf/dl-init.c", 74, true),
                   fr("call_init", kLd, "./elf/dl-init.c", 26), fr("_dl_init", kLd, "./elf/dl-init.c", 121),
                   fr("_dl_start_user", kLd)},
                  "still_reachable", 1, 72704),
             leak({fr("leak_containers", kApp), fr("main", kApp)}, "still_reachable", 1, 400),
             leak({fr("leak_new", kApp), fr("main", kApp)}, "still_reachable", 1, 4)};
  r.summary.leaked_blocks = 3;
  r.summary.leaked_bytes = 73108;
  r.summary.leak_sites = 3;
  r.summary.by_kind[3] = {3, 73108};
  d.apply(r);
  CHECK(r.leaks.size() == 2);
  CHECK(r.suppressed_bytes == 72704);
  CHECK(r.summary.leaked_bytes == 404);
  REQUIRE(r.suppressions_used.size() == 1);
  CHECK(r.suppressions_used[0].file == "<default>");
  CHECK(r.suppressions_used[0].name == "libstdc++-constructor");
  CHECK(r.leaks[0].stack[0].function == "leak_containers");

  // Every default begins with a line only a runtime frame matches: the runtime frames of
  // its own stacks, behind a frame of the program, are the program's site.
  std::vector<std::vector<Frame>> runtime_stacks = {
      {fr("", kLibstdcxx), fr("call_init", kLd), fr("_dl_init", kLd)},
      {fr("_dl_allocate_tls_init", kLd), fr("_dl_allocate_tls", kLd)},
      {fr("", kLd), fr("dl_open_worker_begin", kLd)},
      {fr("start_thread", kLibc), fr("pthread_create@@GLIBC_2.34", kLibc)},
      {fr("_IO_file_doallocate", kLibc), fr("_IO_doallocbuf", kLibc)},
      {fr("_nl_intern_locale_data", kLibc), fr("_nl_load_locale", kLibc)},
      {fr("new_composite_name", kLibc), fr("setlocale", kLibc)},
      {fr("", "/usr/lib/x86_64-linux-gnu/libnss_systemd.so.2"), fr("getpwnam", kLibc)},
      {fr("__nss_database_get", kLibc)},
      {fr("__tzstring", kLibc)},
      {fr("", kLibc), fr("tzset_internal", kLibc), fr("tzset", kLibc)}};
  for (const auto& stack : runtime_stacks) {
    INFO(stack[0].function, " ", stack[0].module);
    CHECK(d.match(leak(stack)) != nullptr);
    std::vector<Frame> behind = stack;
    behind.insert(behind.begin(), fr("user_fn", kApp, "/work/app/u.c", 3));
    CHECK(d.match(leak(behind)) == nullptr);
  }

  // A program's global constructor, also run by call_init/_dl_init, is the program's leak.
  CHECK(d.match(leak({fr("init_globals()", kApp), fr("call_init", kLd), fr("_dl_init", kLd)})) == nullptr);
  CHECK(d.match(leak({fr("leak_new()", kApp), fr("main", kApp)})) == nullptr);
  CHECK(d.match(leak({fr("main", kApp)})) == nullptr);
}

TEST_CASE("suppress: valgrind_suppression() round-trips through the matcher") {
  Leak l = leak({fr("ns::Widget<int*>::make(char const*, int) const", kApp, "w.cpp", 3, true),
                 fr("(anonymous namespace)::build(std::vector<int, std::allocator<int> >&)", kApp),
                 fr("", "/opt/lib/libx.so"), fr("", ""), fr("main")},
                "possibly_lost");
  std::string entry = report::valgrind_suppression(l, "gen-1");
  CHECK(entry ==
        "{\n"
        "   gen-1\n"
        "   Memcheck:Leak\n"
        "   match-leak-kinds: possible\n"
        "   fun:ns::Widget<int\\*>::make(char const\\*, int) const\n"
        "   fun:(anonymous namespace)::build(std::vector<int, std::allocator<int> >&)\n"
        "   obj:/opt/lib/libx.so\n"
        "   obj:*\n"
        "   fun:main\n"
        "}\n");
  Suppressions s = loaded(entry, "gen.supp");
  CHECK(matched(s, l) == "gen-1");
  Leak other = l;
  other.stack[0].function = "ns::Widget<int*>::make(char const*, long) const";
  CHECK(matched(s, other) == "-");
  // '*' in the name is escaped: it matches itself only.
  other = l;
  other.stack[0].function = "ns::Widget<intXX>::make(char const*, int) const";
  CHECK(matched(s, other) == "-");
  other = l;
  other.kind = "definitely_lost";
  CHECK(matched(s, other) == "-");

  // Unclassified: no match-leak-kinds line; deep stacks: 24 frames.
  std::vector<Frame> deep;
  for (int i = 0; i < 30; ++i) deep.push_back(fr("f" + std::to_string(i)));
  std::string e2 = report::valgrind_suppression(leak(deep, "unclassified"), "deep");
  CHECK(e2.find("match-leak-kinds") == std::string::npos);
  CHECK(e2.find("fun:f23\n") != std::string::npos);
  CHECK(e2.find("fun:f24\n") == std::string::npos);
  Suppressions s2 = loaded(e2);
  CHECK(matched(s2, leak(deep, "unclassified")) == "deep");
  CHECK(matched(s2, leak(deep, "still_reachable")) == "deep");

  // A site without frames gets an entry that matches no site with a known function.
  Suppressions s3 = loaded(report::valgrind_suppression(leak({}), "empty"));
  CHECK(matched(s3, leak({fr("anything")})) == "-");
  CHECK(matched(s3, leak({})) == "-");
}
