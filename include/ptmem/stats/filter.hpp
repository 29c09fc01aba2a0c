// Which processes a sweep reports: --pid LIST, --user NAME, --name REGEX.  All given
// filters must match.  --pid also narrows what the sampler reads at all.
#pragma once
#include <optional>
#include <regex>
#include <string>
#include <sys/types.h>
#include <vector>

namespace ptmem::stats {

struct Filter {
  std::vector<pid_t> pids;            ///< empty: every process
  std::optional<uid_t> uid;
  std::optional<std::regex> name;     ///< searched in the name and in the command line
  std::string name_pattern;           ///< as the user typed it, for messages

  bool wants_pid(pid_t pid) const;
  bool matches_name(const std::string& comm, const std::string& command) const;
};

/// Compiles |pattern| (ECMAScript syntax); nullopt and |error| when it is not a regex.
std::optional<std::regex> compile_name_pattern(const std::string& pattern, std::string* error);

/// A user name or a decimal uid.  nullopt and |error| when there is no such user.
std::optional<uid_t> resolve_user(const std::string& user, std::string* error);

/// Login name for |uid| (cached by the caller), or the uid in decimal.
std::string user_name(uid_t uid);

}  // namespace ptmem::stats
