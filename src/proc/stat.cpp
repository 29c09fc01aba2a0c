#include "ptmem/proc/stat.hpp"

#include <charconv>
#include <cstring>

#include "ptmem/proc/maps.hpp"

namespace ptmem::proc {
namespace {

template <typename T>
bool to_number(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 10);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::optional<TaskStat> parse_stat(std::string_view text) {
  // Runs for every process on every sweep: one forward pass, no substrings.
  TaskStat s;
  auto open = text.find('(');
  // memrchr is vectorised; string_view::rfind walks ~300 bytes one at a time.
  auto* last = static_cast<const char*>(::memrchr(text.data(), ')', text.size()));
  if (open == std::string_view::npos || !last || last < text.data() + open) return std::nullopt;
  size_t close = static_cast<size_t>(last - text.data());
  auto pid_text = text.substr(0, open);
  while (!pid_text.empty() && pid_text.back() == ' ') pid_text.remove_suffix(1);
  if (!to_number(pid_text, s.pid)) return std::nullopt;
  s.comm.assign(text.data() + open + 1, close - open - 1);

  // Fields after the name, numbered as in proc(5): 3 = state, 4 = ppid, ... 24 = rss.
  const char* p = text.data() + close + 1;
  const char* end = text.data() + text.size();
  auto skip_spaces = [&] {
    while (p < end && *p == ' ') ++p;
  };
  // A field we do not use: skip it, but it must be there.
  auto skip_field = [&] {
    skip_spaces();
    const char* start = p;
    while (p < end && *p != ' ' && *p != '\n') ++p;
    return p > start;
  };
  // A decimal field; the separator after it must be present, so a record cut inside a
  // number is rejected rather than read as a smaller number.
  auto number = [&](auto& out) {
    skip_spaces();
    auto [next, ec] = std::from_chars(p, end, out, 10);
    if (ec != std::errc() || next == end || (*next != ' ' && *next != '\n')) return false;
    p = next;
    return true;
  };
  skip_spaces();
  if (p + 1 >= end || p[1] != ' ') return std::nullopt;  // field 3: one state letter
  s.state = *p++;
  if (!number(s.ppid)) return std::nullopt;                      // 4
  for (int f = 5; f <= 8; ++f)
    if (!skip_field()) return std::nullopt;                      // pgrp, session, tty, tpgid
  if (!number(s.flags) || !number(s.minflt) || !skip_field() ||  // 9, 10, 11 cminflt
      !number(s.majflt) || !skip_field() ||                      // 12, 13 cmajflt
      !number(s.utime) || !number(s.stime))                      // 14, 15
    return std::nullopt;
  for (int f = 16; f <= 19; ++f)
    if (!skip_field()) return std::nullopt;                      // cutime, cstime, prio, nice
  if (!number(s.num_threads) || !skip_field() ||                 // 20, 21 itrealvalue
      !number(s.starttime) || !number(s.vsize) || !number(s.rss_pages))  // 22, 23, 24
    return std::nullopt;
  return s;
}

std::optional<TaskStat> read_stat(pid_t pid, const std::string& root) {
  auto text = read_file(root + "/" + std::to_string(pid) + "/stat", 64 << 10);
  if (!text) return std::nullopt;
  return parse_stat(*text);
}

std::optional<TaskStat> read_task_stat(pid_t pid, pid_t tid, const std::string& root) {
  auto text = read_file(root + "/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat",
                        64 << 10);
  if (!text) return std::nullopt;
  return parse_stat(*text);
}

}  // namespace ptmem::proc
