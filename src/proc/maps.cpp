#include "ptmem/proc/maps.hpp"
#include "ptmem/proc/kb_lines.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <algorithm>
#include <unistd.h>

namespace ptmem::proc {
namespace {

bool parse_hex(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc() && p == s.data() + s.size();
}

template <typename T>
bool parse_dec(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 10);
  return ec == std::errc() && p == s.data() + s.size();
}

// Next space-separated field of |line| starting at |pos|.
std::string_view next_field(std::string_view line, size_t& pos) {
  while (pos < line.size() && line[pos] == ' ') ++pos;
  size_t start = pos;
  while (pos < line.size() && line[pos] != ' ') ++pos;
  return line.substr(start, pos - start);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

bool parse_maps_line(std::string_view line, Mapping& m) {
  size_t pos = 0;
  auto range = next_field(line, pos);
  auto perms = next_field(line, pos);
  auto offset = next_field(line, pos);
  auto dev = next_field(line, pos);
  auto inode = next_field(line, pos);
  auto dash = range.find('-');
  if (dash == std::string_view::npos || perms.size() < 4) return false;
  if (!parse_hex(range.substr(0, dash), m.start) || !parse_hex(range.substr(dash + 1), m.end)) return false;
  if (m.end < m.start) return false;
  m.read = perms[0] == 'r';
  m.write = perms[1] == 'w';
  m.exec = perms[2] == 'x';
  m.shared = perms[3] == 's';
  if (!parse_hex(offset, m.offset)) return false;
  auto colon = dev.find(':');
  uint64_t maj = 0, min = 0;
  if (colon == std::string_view::npos || !parse_hex(dev.substr(0, colon), maj) ||
      !parse_hex(dev.substr(colon + 1), min))
    return false;
  m.dev_major = static_cast<uint32_t>(maj);
  m.dev_minor = static_cast<uint32_t>(min);
  if (!parse_dec(inode, m.inode)) return false;
  while (pos < line.size() && line[pos] == ' ') ++pos;
  m.path = std::string(line.substr(pos));
  return true;
}

}  // namespace

std::optional<std::string> read_file(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[8192];
  while (out.size() < max_bytes) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::vector<Mapping> parse_maps(std::string_view text, size_t* bad_lines) {
  std::vector<Mapping> out;
  size_t bad = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty()) continue;
    Mapping m;
    if (parse_maps_line(line, m)) out.push_back(std::move(m));
    else ++bad;
  }
  if (bad_lines) *bad_lines = bad;
  return out;
}

std::optional<std::vector<Mapping>> read_maps(pid_t pid, const std::string& root) {
  auto text = read_file(root + "/" + std::to_string(pid) + "/maps", 256 << 20);
  if (!text) return std::nullopt;
  return parse_maps(*text);
}

Auxv parse_auxv(std::string_view bytes) {
  Auxv a;
  for (size_t i = 0; i + 16 <= bytes.size(); i += 16) {
    uint64_t type, value;
    std::memcpy(&type, bytes.data() + i, 8);
    std::memcpy(&value, bytes.data() + i + 8, 8);
    if (type == AT_NULL) break;
    switch (type) {
      case AT_ENTRY: a.entry = value; break;
      case AT_BASE: a.base = value; break;
      case AT_PHDR: a.phdr = value; break;
      case AT_PHNUM: a.phnum = value; break;
      case AT_SYSINFO_EHDR: a.sysinfo_ehdr = value; break;
      default: break;
    }
  }
  return a;
}

std::optional<Auxv> read_auxv(pid_t pid, const std::string& root) {
  auto bytes = read_file(root + "/" + std::to_string(pid) + "/auxv", 64 << 10);
  if (!bytes) return std::nullopt;
  return parse_auxv(*bytes);
}

std::optional<Status> parse_status(std::string_view text) {
  Status s;
  bool saw_name = false, saw_vm = false, saw_uid = false;
  for_each_key_line(text, [&](std::string_view key, std::string_view raw) {
    auto value = trim(raw);
    auto kb = [&](std::optional<uint64_t>& out) {
      out = parse_kb_value(raw);  // "12 kB" only: a line cut before its unit stays unknown
      saw_vm = true;
    };
    if (key == "Name") { s.name = std::string(value); saw_name = true; }
    else if (key == "State" && !value.empty()) s.state = value[0];
    else if (key == "Tgid") parse_dec(value, s.tgid);
    else if (key == "Pid") parse_dec(value, s.pid);
    else if (key == "PPid") parse_dec(value, s.ppid);
    else if (key == "TracerPid") parse_dec(value, s.tracer_pid);
    else if (key == "Uid") saw_uid = parse_dec(value.substr(0, value.find_first_of(" \t")), s.uid);
    else if (key == "Threads") { uint32_t t; if (parse_dec(value, t)) s.threads = t; }
    else if (key == "Kthread") s.kernel_thread = value == "1";
    else if (key == "VmSize") kb(s.vm_size_kb);
    else if (key == "VmRSS") kb(s.vm_rss_kb);
    else if (key == "RssAnon") kb(s.rss_anon_kb);
    else if (key == "RssFile") kb(s.rss_file_kb);
    else if (key == "RssShmem") kb(s.rss_shmem_kb);
    else if (key == "VmSwap") kb(s.vm_swap_kb);
  });
  // A status without its Uid line is truncated: not trusted (uid 0 would mean root).
  if (!saw_name || !saw_uid) return std::nullopt;
  // Kernels before 6.0 have no "Kthread:" line; a kernel thread has no mm, so no Vm* lines.
  if (!saw_vm && s.state != 'Z' && s.state != 'X') s.kernel_thread = true;
  return s;
}

std::optional<Status> read_status(pid_t pid, const std::string& root) {
  auto text = read_file(root + "/" + std::to_string(pid) + "/status", 1 << 20);
  if (!text) return std::nullopt;
  return parse_status(*text);
}

std::vector<pid_t> list_tasks(pid_t pid, const std::string& root) {
  std::vector<pid_t> tids;
  auto path = root + "/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(path.c_str());
  if (!dir) return tids;
  while (auto* e = ::readdir(dir)) {
    pid_t tid;
    std::string_view name = e->d_name;
    if (parse_dec(name, tid) && tid > 0) tids.push_back(tid);
  }
  ::closedir(dir);
  std::sort(tids.begin(), tids.end());
  return tids;
}

}  // namespace ptmem::proc
