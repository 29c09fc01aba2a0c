// ptmem entry point: parse the command line, dispatch to one subcommand.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fmt/format.h>
#include <vector>

#include "ptmem/cli/command.hpp"
#include "ptmem/version.hpp"
#include "ptmem/util/eprint.hpp"

int main(int argc, char** argv) {
  using namespace ptmem::cli;
  CLI::App app{"ptmem - memory and file-handle leak tracker for Linux processes", "ptmem"};
  app.set_version_flag("-V,--version", std::string("ptmem ") + ptmem::kVersion);
  app.require_subcommand(1);
  app.footer("See 'man ptmem' or 'ptmem COMMAND --help'.");

  std::vector<Subcommand> commands{add_stats_command(app), add_launch_command(app),
                                   add_attach_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, the way users of strace/valgrind expect, and the usage exit status.
    std::string what = e.what();
    for (auto& c : what)
      if (c == '\n') c = ' ';
    ptmem::util::eprint("ptmem: {}\n", what);
    return kUsageExit;
  }
  for (auto& cmd : commands)
    if (cmd.app->parsed()) return cmd.run();
  return kUsageExit;
}
