#include "ptmem/proc/statm.hpp"

#include <charconv>

namespace ptmem::proc {

std::optional<Statm> parse_statm(std::string_view text) {
  Statm s;
  uint64_t* out[] = {&s.size, &s.resident, &s.shared};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (uint64_t* field : out) {
    auto [next, ec] = std::from_chars(p, end, *field, 10);
    // Each figure must be followed by a space: a line cut inside a number is rejected.
    if (ec != std::errc() || next == end || *next != ' ') return std::nullopt;
    p = next + 1;
  }
  return s;
}

}  // namespace ptmem::proc
