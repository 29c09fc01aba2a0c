#include "ptmem/stats/filter.hpp"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

namespace ptmem::stats {

bool Filter::wants_pid(pid_t pid) const {
  return pids.empty() || std::find(pids.begin(), pids.end(), pid) != pids.end();
}

bool Filter::matches_name(const std::string& comm, const std::string& command) const {
  if (!name) return true;
  return std::regex_search(comm, *name) || std::regex_search(command, *name);
}

std::optional<std::regex> compile_name_pattern(const std::string& pattern, std::string* error) {
  try {
    return std::regex(pattern, std::regex::ECMAScript | std::regex::optimize);
  } catch (const std::regex_error& e) {
    if (error) *error = fmt::format("invalid regular expression '{}': {}", pattern, e.what());
    return std::nullopt;
  }
}

namespace {

std::optional<passwd> lookup(const char* name, std::optional<uid_t> uid, std::string& buf) {
  buf.resize(16384);
  passwd pw{}, *result = nullptr;
  int rc = name ? ::getpwnam_r(name, &pw, buf.data(), buf.size(), &result)
                : ::getpwuid_r(*uid, &pw, buf.data(), buf.size(), &result);
  if (rc != 0 || !result) return std::nullopt;
  return pw;
}

}  // namespace

std::optional<uid_t> resolve_user(const std::string& user, std::string* error) {
  std::string buf;
  if (auto pw = lookup(user.c_str(), std::nullopt, buf)) return pw->pw_uid;
  uid_t uid = 0;
  auto [p, ec] = std::from_chars(user.data(), user.data() + user.size(), uid, 10);
  if (!user.empty() && ec == std::errc() && p == user.data() + user.size()) return uid;
  if (error) *error = fmt::format("no such user '{}'", user);
  return std::nullopt;
}

std::string user_name(uid_t uid) {
  std::string buf;
  if (auto pw = lookup(nullptr, uid, buf)) return pw->pw_name;
  return std::to_string(uid);
}

}  // namespace ptmem::stats
