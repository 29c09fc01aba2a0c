// Placeholder until the /proc sampler lands (issue 2).
#include "ptmem/cli/command.hpp"
#include <cstdio>
namespace ptmem::cli {
Subcommand add_stats_command(CLI::App& root) {
  auto* app = root.add_subcommand("stats", "Real-time sorted view of process memory and fds");
  return {app, [] { std::fprintf(stderr, "ptmem: stats: not built yet\n"); return 1; }};
}
}  // namespace ptmem::cli
