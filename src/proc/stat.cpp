#include "ptmem/proc/stat.hpp"

#include <charconv>

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
  TaskStat s;
  auto open = text.find('(');
  auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return std::nullopt;
  auto pid_text = text.substr(0, open);
  while (!pid_text.empty() && pid_text.back() == ' ') pid_text.remove_suffix(1);
  if (!to_number(pid_text, s.pid)) return std::nullopt;
  s.comm = std::string(text.substr(open + 1, close - open - 1));

  // Fields after the name, numbered as in proc(5): 3 = state, 4 = ppid, ... 24 = rss.
  std::string_view rest = text.substr(close + 1);
  int field = 2;
  size_t pos = 0;
  while (field < 24) {
    while (pos < rest.size() && (rest[pos] == ' ' || rest[pos] == '\n')) ++pos;
    if (pos >= rest.size()) return std::nullopt;  // truncated
    size_t start = pos;
    while (pos < rest.size() && rest[pos] != ' ' && rest[pos] != '\n') ++pos;
    auto value = rest.substr(start, pos - start);
    ++field;
    bool ok = true;
    switch (field) {
      case 3: ok = value.size() == 1; s.state = value[0]; break;
      case 4: ok = to_number(value, s.ppid); break;
      case 9: ok = to_number(value, s.flags); break;
      case 10: ok = to_number(value, s.minflt); break;
      case 12: ok = to_number(value, s.majflt); break;
      case 14: ok = to_number(value, s.utime); break;
      case 15: ok = to_number(value, s.stime); break;
      case 20: ok = to_number(value, s.num_threads); break;
      case 22: ok = to_number(value, s.starttime); break;
      case 23: ok = to_number(value, s.vsize); break;
      case 24: ok = to_number(value, s.rss_pages); break;
      default: break;
    }
    if (!ok) return std::nullopt;
  }
  // The rss field must be followed by a separator: text cut inside the number would
  // otherwise parse as a smaller figure.
  if (pos >= rest.size()) return std::nullopt;
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
