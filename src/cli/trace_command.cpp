// Placeholder until the tracer lands (issue 3).
#include "ptmem/cli/command.hpp"
#include <cstdio>
namespace ptmem::cli {
Subcommand add_launch_command(CLI::App& root) {
  auto* app = root.add_subcommand("launch", "Run a program traced and report its leaks");
  return {app, [] { std::fprintf(stderr, "ptmem: launch: not built yet\n"); return 1; }};
}
Subcommand add_attach_command(CLI::App& root) {
  auto* app = root.add_subcommand("attach", "Trace a running process and report its leaks");
  return {app, [] { std::fprintf(stderr, "ptmem: attach: not built yet\n"); return 1; }};
}
}  // namespace ptmem::cli
