// Suppression files (valgrind .supp and LSan leak: lists): Suppressions::load_text, then
// match and apply on a leak site taken from the input, and the property that
// valgrind_suppression's entry for that site loads back and matches it.
// Input: the file text, then optionally a NUL and the site: a kind digit, then one frame
// per line as FUNCTION TAB MODULE TAB FILE.
#include <cstring>

#include "fuzz_common.hpp"
#include "ptmem/report/suppressions.hpp"

namespace {

std::string field(std::string_view& line) {
  auto tab = line.find('\t');
  std::string f(line.substr(0, tab));
  line = tab == std::string_view::npos ? std::string_view() : line.substr(tab + 1);
  // Names ptmem reports have no control characters and no surrounding blanks: file lines
  // are trimmed, so such names could not round-trip.
  std::string clean;
  for (char c : f)
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) clean += c;
  while (!clean.empty() && clean.back() == ' ') clean.pop_back();
  while (!clean.empty() && clean.front() == ' ') clean.erase(0, 1);
  return clean;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ptmem::report;
  auto input = ptmem::fuzz::as_text(data, size);
  auto nul = input.find('\0');
  std::string text(input.substr(0, nul));
  std::string_view site = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);

  Leak leak;
  static const char* kKinds[] = {"definitely_lost", "indirectly_lost", "possibly_lost", "still_reachable",
                                 "unclassified"};
  if (!site.empty()) {
    leak.kind = kKinds[static_cast<unsigned char>(site[0]) % 5];
    site.remove_prefix(1);
  }
  while (!site.empty() && leak.stack.size() < 40) {
    auto eol = site.find('\n');
    std::string_view line = site.substr(0, eol);
    site = eol == std::string_view::npos ? std::string_view() : site.substr(eol + 1);
    Frame f;
    f.function = field(line);
    f.module = field(line);
    f.file = field(line);
    leak.stack.push_back(std::move(f));
  }
  leak.blocks = 3;
  leak.bytes = 30;

  Suppressions s;
  std::string error;
  bool ok = s.load_text(text, "fuzz", &error);
  PTMEM_FUZZ_CHECK(ok || error.rfind("fuzz:", 0) == 0);
  PTMEM_FUZZ_CHECK(ok || s.all().empty());
  if (ok) {
    Report r;
    r.summary.classified = true;
    r.leaks.push_back(leak);
    r.summary.leaked_blocks = 3;
    r.summary.leaked_bytes = 30;
    r.summary.leak_sites = 1;
    bool matched = s.match(leak) != nullptr;
    s.apply(r);
    PTMEM_FUZZ_CHECK(r.leaks.empty() == matched);
    PTMEM_FUZZ_CHECK(r.summary.leaked_blocks + r.suppressed_blocks == 3);
    PTMEM_FUZZ_CHECK(r.suppressions_used.size() == (matched ? 1u : 0u));
  }

  if (!leak.stack.empty()) {
    Suppressions back;
    bool loaded = back.load_text(valgrind_suppression(leak, "gen"), "gen", &error);
    PTMEM_FUZZ_CHECK(loaded);
    PTMEM_FUZZ_CHECK(back.match(leak) != nullptr);
  }
  return 0;
}
