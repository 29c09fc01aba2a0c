#include "ptmem/report/suppressions.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <cxxabi.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string_view>

#include "ptmem/report/site.hpp"

namespace ptmem::report {
namespace {

constexpr size_t kMaxEntryLines = 500;  // valgrind's VG_DEEPEST_BACKTRACE: more is an error

struct GlobOptions {
  bool question = true;   // '?' is a wildcard (valgrind), or a plain character (LSan)
  bool backslash = true;  // '\' escapes the next character (valgrind)
};

// Whole-string match of |s| by |pat| with '*' (any run) and '?' (one character).  Iterative
// with a single backtrack point: linear-ish, never exponential on hostile patterns.
bool glob(std::string_view pat, std::string_view s, GlobOptions o = {}) {
  size_t p = 0, i = 0, star_p = std::string_view::npos, star_i = 0;
  while (i < s.size()) {
    if (p < pat.size() && pat[p] == '*') {
      star_p = ++p;
      star_i = i;
      continue;
    }
    if (p < pat.size()) {
      char c = pat[p];
      size_t width = 1;
      bool any = o.question && c == '?';
      if (o.backslash && c == '\\' && p + 1 < pat.size()) {
        c = pat[p + 1];
        width = 2;
      }
      if (any || c == s[i]) {
        p += width;
        ++i;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    i = ++star_i;
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

bool has_wildcards(std::string_view pat) {
  return pat.find_first_of("*?\\") != std::string_view::npos;
}

// LeakSanitizer's TemplateMatch: '*' wildcards, '^' anchors at the start and '$' at the end
// (what follows a '$' is ignored, as LSan does), otherwise the pattern may match anywhere.
// LSan matches each literal run at its first occurrence without backtracking; this matches
// whenever any placement works, a superset only on patterns LSan misses by that shortcut.
bool lsan_match(std::string_view templ, std::string_view s) {
  if (s.empty()) return false;
  std::string g;
  bool start = !templ.empty() && templ[0] == '^';
  if (start) templ.remove_prefix(1);
  auto dollar = templ.find('$');
  bool end = dollar != std::string_view::npos;
  if (end) templ = templ.substr(0, dollar);
  if (!start) g += '*';
  g += templ;
  if (!end) g += '*';
  return glob(g, s, {.question = false, .backslash = false});
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// "f(int) const" -> "f", "ns::g<int (*)(int)>(char*)" -> "ns::g<int (*)(int)>": the
// parameter list (and cv/ref qualifiers) of a demangled name, which DWARF names may lack.
std::string_view without_params(std::string_view fn) {
  for (std::string_view q : {" const", " volatile", " &&", " &"})
    while (fn.size() > q.size() && fn.substr(fn.size() - q.size()) == q) fn.remove_suffix(q.size());
  if (fn.empty() || fn.back() != ')') return fn;
  int depth = 0;
  for (size_t i = fn.size(); i-- > 0;) {
    if (fn[i] == ')') ++depth;
    if (fn[i] == '(' && --depth == 0) return i == 0 ? fn : fn.substr(0, i);
  }
  return fn;
}

// "pthread_create@@GLIBC_2.34" -> "pthread_create": valgrind names versioned symbols so.
std::string_view without_version(std::string_view fn) {
  auto at = fn.find('@');
  return at == std::string_view::npos || at == 0 ? fn : fn.substr(0, at);
}

std::string demangle(const std::string& mangled) {
  if (!starts_with(mangled, "_Z")) return {};
  int status = -1;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status),
                                             std::free);
  return status == 0 && out ? std::string(out.get()) : std::string();
}

// glibc functions (public or internal without a reserved name) found between an allocator
// and the program in valgrind's stacks: ptmem's sites start below them.
constexpr std::string_view kRuntimeFunctions[] = {
    "printf", "fprintf", "vprintf", "vfprintf", "dprintf", "puts", "fputs", "fputc", "putc",
    "putchar", "fwrite", "fflush", "fopen", "fopen64", "fdopen", "freopen", "fopencookie",
    "open_memstream", "popen", "scanf", "fscanf", "sscanf", "fgets", "fgetc", "getc", "getchar",
    "fread", "ungetc", "setlocale", "newlocale", "duplocale", "new_composite_name",
    "getpwnam", "getpwuid", "getpwnam_r", "getpwuid_r", "getgrnam", "getgrgid", "getaddrinfo",
    "gethostbyname", "tzset", "tzset_internal", "tzfile_read", "localtime", "localtime_r",
    "mktime", "strftime", "ctime", "opendir", "fdopendir", "dlopen", "dlsym", "dlerror",
    "dl_open_worker", "dl_open_worker_begin", "call_init", "allocate_dtv", "allocate_stack",
    "pthread_create", "start_thread", "clone", "clone3", "catopen", "textdomain",
    "bindtextdomain", "dcgettext", "dcigettext", "gettext", "qsort", "atexit", "on_exit",
    "register_printf_function", "backtrace", "iconv_open"};

// Whether an entry line may stand for a frame that ptmem's sites leave out: the allocator
// and the C/C++ runtime above the program's first frame, or below its last.
bool is_runtime_line(const Suppression::FrameMatch& m) {
  using K = Suppression::FrameMatch::Kind;
  if (m.kind == K::Obj) {
    std::string_view base = m.pattern;
    if (base.find("vgpreload") != std::string_view::npos) return true;
    if (auto slash = base.rfind('/'); slash != std::string_view::npos) base.remove_prefix(slash + 1);
    while (!base.empty() && base[0] == '*') base.remove_prefix(1);
    return !base.empty() && is_runtime_module(base);
  }
  if (m.kind != K::Fun) return false;
  if (has_wildcards(m.pattern)) {
    // fun:*alloc, fun:*: the allocator line of hand-written entries.
    for (std::string_view a : {"malloc", "calloc", "realloc", "memalign", "posix_memalign",
                               "aligned_alloc", "valloc", "_Znwm", "_Znam", "operator new(unsigned long)",
                               "operator new[](unsigned long)"})
      if (glob(m.pattern, a)) return true;
    return false;
  }
  std::string demangled = demangle(m.pattern);
  std::string_view fn = demangled.empty() ? std::string_view(m.pattern) : std::string_view(demangled);
  fn = without_version(fn);
  if (is_allocator_function(fn)) return true;
  // Names beginning with '_' are reserved at file scope (C11 7.1.3): glibc's internals
  // (_dl_allocate_tls, _IO_file_doallocate), never a program's functions.
  if (!fn.empty() && fn[0] == '_') return true;
  if (starts_with(fn, "std::") || starts_with(fn, "__gnu_cxx::") || starts_with(fn, "operator delete"))
    return true;
  fn = without_params(fn);
  return std::find(std::begin(kRuntimeFunctions), std::end(kRuntimeFunctions), fn) !=
         std::end(kRuntimeFunctions);
}

// What a fun: line is compared with besides its own text: for a mangled name without
// wildcards (valgrind writes fun:_ZL8leak_newv), its demangled form.
std::string demangled_alternative(const std::string& pattern) {
  if (has_wildcards(pattern)) return {};
  return demangle(pattern);
}

bool fun_matches(const Suppression::FrameMatch& m, const std::string& alt, const Frame& f) {
  // valgrind names an unknown function "???".
  std::string_view fn = f.function.empty() ? std::string_view("???") : std::string_view(f.function);
  if (glob(m.pattern, fn)) return true;
  if (has_wildcards(m.pattern)) return false;
  std::string_view pat = alt.empty() ? without_version(m.pattern) : std::string_view(alt);
  if (pat == fn) return true;
  // One side may lack the parameter list (DWARF's DW_AT_name, or a C name vs a C++ one).
  return !f.function.empty() && without_params(pat) == without_params(fn) &&
         (without_params(pat) == pat || without_params(fn) == fn);
}

// src:FILE or src:FILE:LINE (valgrind 3.20): FILE against the frame's file or its basename.
bool src_matches(const std::string& pattern, const Frame& f) {
  if (f.file.empty()) return false;
  std::string_view file = pattern;
  int line = 0;
  if (auto colon = file.rfind(':'); colon != std::string_view::npos && colon + 1 < file.size() &&
                                    std::all_of(file.begin() + colon + 1, file.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                                    file.size() - colon - 1 <= 9) {
    line = std::stoi(std::string(file.substr(colon + 1)));
    file = file.substr(0, colon);
  }
  if (line != 0 && line != f.line) return false;
  std::string_view base = f.file;
  if (auto slash = base.rfind('/'); slash != std::string_view::npos) base.remove_prefix(slash + 1);
  return glob(file, f.file) || glob(file, base);
}

bool line_matches(const Suppression::FrameMatch& m, const std::string& alt, const Frame& f) {
  using K = Suppression::FrameMatch::Kind;
  switch (m.kind) {
    case K::Fun: return fun_matches(m, alt, f);
    case K::Obj: return glob(m.pattern, f.module.empty() ? std::string_view("???") : std::string_view(f.module));
    case K::Src: return src_matches(m.pattern, f);
    case K::Ellipsis: return true;
  }
  return false;
}

// valgrind's match-leak-kinds words and ptmem's kind names, in track::LeakKind order.
constexpr std::string_view kValgrindKinds[] = {"definite", "indirect", "possible", "reachable"};
constexpr std::string_view kKindNames[] = {"definitely_lost", "indirectly_lost", "possibly_lost",
                                           "still_reachable"};

int kind_index(std::string_view kind) {
  for (int k = 0; k < track::kLeakKinds; ++k)
    if (kKindNames[k] == kind) return k;
  return -1;
}

bool kinds_match(const Suppression& s, const std::string& kind) {
  if (s.kinds.empty()) return true;
  // Without the reachability scan a site's kind is unknown: a kind list cannot exclude it
  // (memcheck's own entries always carry one), except match-leak-kinds: none.
  if (kind == "unclassified") return !(s.kinds.size() == 1 && s.kinds[0] == "none");
  return std::find(s.kinds.begin(), s.kinds.end(), kind) != s.kinds.end();
}

// Lines of the text, 1-based, '\r' dropped.
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string cur;
  std::istringstream in(text);
  while (std::getline(in, cur)) lines.push_back(trim(cur));
  return lines;
}

bool is_skipped(const std::string& line) { return line.empty() || line[0] == '#'; }

class Parser {
 public:
  Parser(const std::string& text, const std::string& name, Suppression::Source source)
      : lines_(split_lines(text)), name_(name), source_(source) {}

  bool parse(std::vector<Suppression>& out, std::string* error) {
    bool valgrind = false;
    for (const std::string& l : lines_)
      if (!is_skipped(l)) {
        valgrind = l[0] == '{';
        break;
      }
    bool ok = valgrind ? parse_valgrind(out) : parse_lsan(out);
    if (!ok && error) *error = error_;
    return ok;
  }

 private:
  bool fail(size_t index, const std::string& what) {
    error_ = name_ + ":" + std::to_string(index + 1) + ": " + what;
    return false;
  }

  // The next line that is neither blank nor a comment (valgrind skips them anywhere).
  bool next(size_t& i) {
    while (i < lines_.size() && is_skipped(lines_[i])) ++i;
    return i < lines_.size();
  }

  bool parse_valgrind(std::vector<Suppression>& out) {
    using K = Suppression::FrameMatch::Kind;
    size_t i = 0;
    while (next(i)) {
      size_t start = i;
      if (lines_[i] != "{") return fail(i, "expected '{' to start a suppression, got '" + lines_[i] + "'");
      ++i;
      if (!next(i)) return fail(start, "unterminated suppression (no name)");
      if (lines_[i] == "}") return fail(i, "suppression without a name");
      Suppression s;
      s.source = source_;
      s.name = lines_[i++];
      s.file = name_;
      s.line = static_cast<int>(start + 1);
      if (!next(i)) return fail(start, "unterminated suppression '" + s.name + "' (no TOOL:KIND line)");
      const std::string& tool = lines_[i];
      auto colon = tool.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == tool.size())
        return fail(i, "expected TOOL:KIND (e.g. Memcheck:Leak), got '" + tool + "'");
      bool memcheck = false;
      std::string_view tools = std::string_view(tool).substr(0, colon);
      while (!tools.empty()) {  // "Memcheck,Addrcheck:Leak" names several tools
        auto comma = tools.find(',');
        memcheck |= tools.substr(0, comma) == "Memcheck";
        tools = comma == std::string_view::npos ? std::string_view() : tools.substr(comma + 1);
      }
      bool leak = memcheck && tool.substr(colon + 1) == "Leak";
      ++i;
      if (!leak) {
        // Another tool's or another memcheck error's entry: its lines have their own syntax
        // (Memcheck:Param has the syscall line); only leaks concern ptmem.
        while (next(i) && lines_[i] != "}") ++i;
        if (i == lines_.size()) return fail(start, "unterminated suppression '" + s.name + "' (no '}')");
        ++i;
        continue;
      }
      if (next(i) && starts_with(lines_[i], "match-leak-kinds:")) {
        if (!parse_kinds(i, s)) return false;
        ++i;
      }
      for (;;) {
        if (!next(i)) return fail(start, "unterminated suppression '" + s.name + "' (no '}')");
        const std::string& l = lines_[i];
        if (l == "}") break;
        Suppression::FrameMatch m;
        if (l == "...") m.kind = K::Ellipsis;
        else if (starts_with(l, "fun:")) m.kind = K::Fun;
        else if (starts_with(l, "obj:")) m.kind = K::Obj;
        else if (starts_with(l, "src:")) m.kind = K::Src;
        else return fail(i, "expected fun:, obj:, src:, '...' or '}', got '" + l + "'");
        if (m.kind != K::Ellipsis) m.pattern = l.substr(4);
        if (s.frames.size() == kMaxEntryLines) return fail(i, "too many frame lines (over 500)");
        s.frames.push_back(std::move(m));
        ++i;
      }
      if (s.frames.empty()) return fail(i, "suppression '" + s.name + "' has no frame lines");
      ++i;
      out.push_back(std::move(s));
    }
    return true;
  }

  bool parse_kinds(size_t i, Suppression& s) {
    std::string_view list = std::string_view(lines_[i]).substr(std::string_view("match-leak-kinds:").size());
    std::string words = trim(list);
    if (words.empty()) return fail(i, "match-leak-kinds: without a kind");
    std::string_view rest = words;
    while (true) {
      auto comma = rest.find(',');
      std::string w = trim(rest.substr(0, comma));
      if (w == "all") {
        s.kinds.assign(std::begin(kKindNames), std::end(kKindNames));
      } else if (w == "none") {
        s.kinds = {"none"};
      } else {
        auto it = std::find(std::begin(kValgrindKinds), std::end(kValgrindKinds), w);
        if (it == std::end(kValgrindKinds))
          return fail(i, "unknown leak kind '" + w + "' (definite, indirect, possible, reachable, all, none)");
        std::string name(kKindNames[it - std::begin(kValgrindKinds)]);
        if (std::find(s.kinds.begin(), s.kinds.end(), name) == s.kinds.end()) s.kinds.push_back(name);
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return true;
  }

  bool parse_lsan(std::vector<Suppression>& out) {
    // Types other sanitizers read from a shared file (TSan, ASan, UBSan): ignored.
    static constexpr std::string_view kOther[] = {
        "race", "race_top", "thread", "mutex", "signal", "deadlock", "called_from_lib",
        "interceptor_name", "interceptor_via_fun", "interceptor_via_lib", "odr_violation",
        "alignment", "bool", "bounds", "enum", "float-cast-overflow", "function",
        "implicit-integer-sign-change", "implicit-signed-integer-truncation",
        "implicit-unsigned-integer-truncation", "integer-divide-by-zero", "invalid-builtin-use",
        "nonnull-attribute", "null", "nullability-arg", "nullability-assign",
        "nullability-return", "object-size", "pointer-overflow", "return",
        "returns-nonnull-attribute", "shift", "shift-base", "shift-exponent",
        "signed-integer-overflow", "unreachable", "unsigned-integer-overflow", "vla-bound",
        "vptr", "cfi-icall", "cfi-vcall", "cfi-nvcall", "cfi-cast-strict", "cfi-derived-cast",
        "cfi-unrelated-cast", "cfi-mfcall"};
    for (size_t i = 0; i < lines_.size(); ++i) {
      const std::string& l = lines_[i];
      if (is_skipped(l)) continue;
      auto colon = l.find(':');
      if (colon == std::string::npos)
        return fail(i, "expected TYPE:PATTERN (e.g. leak:libfoo.so), got '" + l + "'");
      std::string type = l.substr(0, colon);
      std::string pattern = trim(std::string_view(l).substr(colon + 1));
      if (type != "leak") {
        if (std::find(std::begin(kOther), std::end(kOther), type) == std::end(kOther))
          return fail(i, "unknown suppression type '" + type + "'");
        continue;
      }
      if (pattern.empty()) return fail(i, "leak: without a pattern");
      Suppression s;
      s.source = Suppression::Source::LeakSanitizer;
      s.name = pattern;
      s.file = name_;
      s.line = static_cast<int>(i + 1);
      out.push_back(std::move(s));
    }
    return true;
  }

  std::vector<std::string> lines_;
  std::string name_;
  Suppression::Source source_;
  std::string error_;
};

// Whether the entry's lines match a prefix of |stack|.  Lines that may stand for a frame
// ptmem leaves out (is_runtime_line) may also match nothing, at the start (before the
// site's first frame) or at the end (after its last); an entry matches only through a
// line that matched a frame of the site, never through skipped lines and '...' alone.
bool frames_match(const Suppression& s, const std::vector<Frame>& stack,
                  const std::vector<std::string>& alts, const std::vector<bool>& runtime) {
  using K = Suppression::FrameMatch::Kind;
  const size_t e = s.frames.size(), n = stack.size();
  bool all_ellipsis = std::all_of(s.frames.begin(), s.frames.end(), [](const auto& m) { return m.kind == K::Ellipsis; });
  // reach[(i * (n + 1) + j) * 2 + m]: lines [0, i) matched frames [0, j); m: a line matched
  // a frame (not '...').
  std::vector<char> reach((e + 1) * (n + 1) * 2, 0);
  auto at = [&](size_t i, size_t j, int m) -> char& { return reach[(i * (n + 1) + j) * 2 + m]; };
  at(0, 0, 0) = 1;
  for (size_t i = 0; i < e; ++i) {
    const auto& line = s.frames[i];
    for (size_t j = 0; j <= n; ++j)
      for (int m = 0; m < 2; ++m) {
        if (!at(i, j, m)) continue;
        if (line.kind == K::Ellipsis) {
          at(i + 1, j, m) = 1;
          if (j < n) at(i, j + 1, m) = 1;  // row i again, later j: same pass
          continue;
        }
        if (j < n && line_matches(line, alts[i], stack[j])) at(i + 1, j + 1, 1) = 1;
        if (runtime[i] && (j == 0 || j == n)) at(i + 1, j, m) = 1;
      }
  }
  for (size_t j = 0; j <= n; ++j)
    if (at(e, j, 1) || (all_ellipsis && at(e, j, 0))) return true;
  return false;
}

}  // namespace

bool Suppressions::load_text(const std::string& text, const std::string& name, std::string* error) {
  std::vector<Suppression> parsed;
  Parser parser(text, name, Suppression::Source::Valgrind);
  if (!parser.parse(parsed, error)) return false;
  for (Suppression& s : parsed) add(std::move(s));
  return true;
}

bool Suppressions::load_file(const std::string& path, std::string* error) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {  // ifstream would open it and read nothing
    if (error) *error = path + ": is a directory";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (error) *error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    if (error) *error = path + ": read error";
    return false;
  }
  return load_text(text.str(), path, error);
}

void Suppressions::add(Suppression s) {
  Compiled c;
  for (const auto& m : s.frames) {
    bool fun = m.kind == Suppression::FrameMatch::Kind::Fun;
    c.alts.push_back(fun ? demangled_alternative(m.pattern) : std::string());
    // The defaults are written for ptmem's sites as they are: nothing in them is optional.
    c.runtime.push_back(s.source != Suppression::Source::Default && is_runtime_line(m));
  }
  all_.push_back(std::move(s));
  compiled_.push_back(std::move(c));
}

const Suppression* Suppressions::match(const Leak& leak) const {
  for (size_t k = 0; k < all_.size(); ++k) {
    const Suppression& s = all_[k];
    if (s.source == Suppression::Source::LeakSanitizer) {
      for (const Frame& f : leak.stack)
        if (lsan_match(s.name, f.function) || lsan_match(s.name, f.module) || lsan_match(s.name, f.file))
          return &s;
      continue;
    }
    if (kinds_match(s, leak.kind) && frames_match(s, leak.stack, compiled_[k].alts, compiled_[k].runtime))
      return &s;
  }
  return nullptr;
}

void Suppressions::apply(Report& report) const {
  // Only memory leak sites: fd leaks have no suppression syntax in either format.
  std::map<const Suppression*, size_t> use_of;  // index in report.suppressions_used
  for (size_t u = 0; u < report.suppressions_used.size(); ++u)
    for (const Suppression& s : all_)
      if (s.name == report.suppressions_used[u].name && s.file == report.suppressions_used[u].file &&
          s.line == report.suppressions_used[u].line)
        use_of.emplace(&s, u);
  std::vector<Leak> kept;
  Summary& sum = report.summary;
  for (Leak& leak : report.leaks) {
    const Suppression* s = match(leak);
    if (!s) {
      kept.push_back(std::move(leak));
      continue;
    }
    auto [it, added] = use_of.try_emplace(s, report.suppressions_used.size());
    if (added) report.suppressions_used.push_back(SuppressionUse{s->name, s->file, s->line});
    SuppressionUse& use = report.suppressions_used[it->second];
    ++use.sites;
    use.blocks += leak.blocks;
    use.bytes += leak.bytes;
    report.suppressed_sites++;
    report.suppressed_blocks += leak.blocks;
    report.suppressed_bytes += leak.bytes;
    sum.leaked_blocks -= std::min(sum.leaked_blocks, leak.blocks);
    sum.leaked_bytes -= std::min(sum.leaked_bytes, leak.bytes);
    if (sum.leak_sites > 0) --sum.leak_sites;
    if (int k = kind_index(leak.kind); sum.classified && k >= 0) {
      sum.by_kind[k].blocks -= std::min(sum.by_kind[k].blocks, leak.blocks);
      sum.by_kind[k].bytes -= std::min(sum.by_kind[k].bytes, leak.bytes);
    }
  }
  report.leaks = std::move(kept);
  for (Report& child : report.children) apply(child);
}

std::string valgrind_suppression(const Leak& leak, const std::string& name) {
  std::string out = "{\n   " + name + "\n   Memcheck:Leak\n";
  if (int k = kind_index(leak.kind); k >= 0) out += "   match-leak-kinds: " + std::string(kValgrindKinds[k]) + "\n";
  // Pattern characters in a name are escaped: the entry then matches that name only.
  auto escaped = [](const std::string& s) {
    std::string e;
    for (char c : s) {
      if (c == '*' || c == '?' || c == '\\') e += '\\';
      e += c;
    }
    return e;
  };
  size_t n = std::min<size_t>(leak.stack.size(), 24);  // memcheck's --num-callers limit for entries
  for (size_t i = 0; i < n; ++i) {
    const Frame& f = leak.stack[i];
    if (!f.function.empty()) out += "   fun:" + escaped(f.function) + "\n";
    else if (!f.module.empty()) out += "   obj:" + escaped(f.module) + "\n";
    else out += "   obj:*\n";
  }
  // No frames (the stack was not captured): no line matches an empty stack, and '...'
  // alone would match every site; this line matches unknown functions only.
  if (n == 0) out += "   fun:\\?\\?\\?\n";
  return out + "}\n";
}

}  // namespace ptmem::report

namespace ptmem::report {

const std::string& default_suppressions_text() {
  // ptmem's sites start at the program's first frame (site.hpp): a runtime allocation the
  // program asked for (printf's stdio buffer, pthread_create's DTV, setlocale's tables,
  // getpwnam's buffers) is the program's site and no default can tell it from the
  // program's own malloc.  What is left for defaults are sites made of runtime frames only,
  // and each entry below begins with a line only a runtime frame matches (a runtime
  // module, or a name reserved to the implementation): a site with a frame of the
  // program begins with that frame, so no entry here can match it.  (NSS modules are
  // not runtime modules for the site rule: their entry matches sites that begin in one,
  // whose allocating frames are the module's.)  No line is optional
  // (is_runtime_line does not apply), and no kinds are given: the scan may see these
  // blocks as reachable or not depending on where the runtime keeps the pointer.
  static const std::string text = R"(# ptmem's built-in suppressions (valgrind format): one-time allocations of the C and
# C++ runtimes that nothing frees before exit.

# Constructors of the runtime libraries, run by the loader before main.  libstdc++'s
# emergency exception-handling pool (eh_alloc.cc, 72704 bytes with GCC 12) is
#   ??? (libstdc++.so), call_init (inlined), call_init, _dl_init, _dl_start_user
{
   libstdc++-constructor
   Memcheck:Leak
   obj:*/libstdc++.so*
   ...
   fun:_dl_init
}
{
   libc-constructor
   Memcheck:Leak
   obj:*/libc.so*
   ...
   fun:_dl_init
}
{
   libgcc_s-constructor
   Memcheck:Leak
   obj:*/libgcc_s.so*
   ...
   fun:_dl_init
}
{
   loader-init
   Memcheck:Leak
   obj:*/ld-linux*.so*
   ...
   fun:_dl_init
}

# The loader's own blocks when the runtime asked for them: thread-local storage of
# threads the runtime starts (the DTV, _dl_allocate_tls) and dlopen's bookkeeping.
{
   loader-tls
   Memcheck:Leak
   obj:*/ld-linux*.so*
   ...
   fun:_dl_allocate_tls*
}
{
   loader-dlopen
   Memcheck:Leak
   obj:*/ld-linux*.so*
   ...
   fun:dl_open_worker*
}
{
   runtime-thread-create
   Memcheck:Leak
   obj:*/libc.so*
   ...
   fun:pthread_create*
}

# stdio buffers (_IO_file_doallocate and the rest of libio) and locale data (_nl_*):
# allocated once per stream or locale category and kept.
{
   stdio
   Memcheck:Leak
   fun:_IO_*
}
{
   locale
   Memcheck:Leak
   fun:_nl_*
}
{
   locale-setlocale
   Memcheck:Leak
   obj:*/libc.so*
   ...
   fun:setlocale
}

# Name service switch modules (getpwnam, getgrnam, getaddrinfo...) keep their state.
{
   nss-module
   Memcheck:Leak
   obj:*/libnss_*.so*
}
{
   nss-libc
   Memcheck:Leak
   fun:__nss_*
}

# The time zone read by tzset (and localtime, mktime, strftime through it).
{
   tzset
   Memcheck:Leak
   fun:__tz*
}
{
   tzset-internal
   Memcheck:Leak
   obj:*/libc.so*
   ...
   fun:tzset*
}
)";
  return text;
}

void Suppressions::add_defaults() {
  std::vector<Suppression> parsed;
  std::string error;
  Parser parser(default_suppressions_text(), "<default>", Suppression::Source::Default);
  // The text is ptmem's own and tested: a parse error is a bug, not a user's mistake.
  if (!parser.parse(parsed, &error)) throw std::logic_error("default suppressions: " + error);
  for (Suppression& s : parsed) add(std::move(s));
}

}  // namespace ptmem::report
