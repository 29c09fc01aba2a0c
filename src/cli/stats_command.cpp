// `ptmem stats`: options -> stats::StatsOptions -> stats::run_stats.  Every check that can
// be made before sampling is a CLI11 validator, so a bad value is a one-line error with
// exit status 2 (main.cpp), never a half-started run.
#include <charconv>
#include <cstdint>
#include <fmt/format.h>

#include "ptmem/cli/command.hpp"
#include "ptmem/stats/run.hpp"
#include "ptmem/util/duration.hpp"
#include "ptmem/util/output_file.hpp"
#include "ptmem/util/eprint.hpp"

namespace ptmem::cli {
namespace {

struct StatsArgs {
  std::string sort = "rss";
  bool reverse = false;
  size_t top = 0;
  std::vector<pid_t> pids;
  std::string user, name;
  std::string interval = "1s";
  uint64_t count = 0;
  bool batch = false;
  std::string format = "table";
  std::string output;
  bool threads = false, pss = false;
  size_t window = 30;
  std::string root = "/proc";
};

CLI::Validator user_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        std::string error;
        if (!stats::resolve_user(value, &error)) return error;
        return {};
      },
      "USER");
}

CLI::Validator regex_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        std::string error;
        if (!stats::compile_name_pattern(value, &error)) return error;
        return {};
      },
      "REGEX");
}


std::string join(const std::vector<std::string_view>& names) {
  std::string out;
  for (auto n : names) out += (out.empty() ? "" : "|") + std::string(n);
  return out;
}

}  // namespace

Subcommand add_stats_command(CLI::App& root) {
  auto args = std::make_shared<StatsArgs>();
  auto* app = root.add_subcommand(
      "stats", "Real-time sorted view of process memory and fds, flagging steady growth");
  app->footer(
      "Full-screen on a terminal (keys: q quit, p pause, t threads, r/P/u/a/s/v/f/T/g/F/i/n "
      "sort, R reverse, Enter trace the selected process); one block per sample otherwise.  See 'man ptmem'.");

  std::vector<std::string> sort_names;
  for (auto n : stats::sort_key_names()) sort_names.emplace_back(n);
  app->add_option("--sort", args->sort, "Sort by " + join(stats::sort_key_names()))
      ->check(CLI::IsMember(sort_names))
      ->capture_default_str();
  app->add_flag("--reverse", args->reverse, "Reverse the sort order");
  app->add_option("--top", args->top, "Show only the first N processes")->check(positive_integer());
  app->add_option("--pid", args->pids, "Only these processes (comma-separated list)")
      ->delimiter(',')
      ->check(positive_integer());
  app->add_option("--user", args->user, "Only processes of this user (name or uid)")
      ->check(user_validator());
  app->add_option("--name", args->name,
                  "Only processes whose name or command line matches this regular expression")
      ->check(regex_validator());
  app->add_option("--interval", args->interval, "Time between samples (us, ms, s, m)")
      ->check(duration_validator())
      ->capture_default_str();
  app->add_option("--count", args->count, "Take N samples, then exit")->check(positive_integer());
  app->add_flag("--batch", args->batch, "Append one block per sample, even on a terminal");
  app->add_option("--format", args->format, "Output format: table|csv|json")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  app->add_option("-o,--output", args->output,
                  "Write every sample to FILE as it is taken (complete lines only)");
  app->add_flag("--threads", args->threads,
                "Show every thread: TID, name, state, CPU %, faults per second");
  app->add_flag("--pss", args->pss, "Read PSS and USS (smaps_rollup) for the rows shown");
  app->add_option("--window", args->window,
                  "Samples in the leak-suspicion window (at least 4)")
      ->check(CLI::Range(size_t(4), size_t(100000)))
      ->capture_default_str();
  app->add_option("--proc-root", args->root,
                  "Read this directory instead of /proc (a copied or fixture tree)")
      ->check(CLI::ExistingDirectory)
      ->capture_default_str();

  auto run = [args]() -> int {
    stats::StatsOptions o;
    o.sampler.root = args->root;
    o.sampler.trend.window = args->window;
    o.sampler.filter.pids = args->pids;
    if (!args->user.empty()) o.sampler.filter.uid = stats::resolve_user(args->user, nullptr);
    if (!args->name.empty()) {
      o.sampler.filter.name = stats::compile_name_pattern(args->name, nullptr);
      o.sampler.filter.name_pattern = args->name;
    }
    o.view.key = *stats::parse_sort_key(args->sort);
    o.view.reverse = args->reverse;
    o.view.threads = args->threads;
    o.view.pss = args->pss || stats::needs_smaps(o.view.key);
    if (args->top) o.top = args->top;
    o.interval = *util::parse_duration(args->interval);
    if (args->count) o.count = args->count;
    o.batch = args->batch;
    o.format = *stats::parse_format(args->format);
    o.output = args->output;
    o.trace = trace_on_terminal;  // Enter in the full-screen view
    if (!o.output.empty()) {
      std::string error;
      if (!util::check_writable(o.output, &error)) {
        util::eprint("ptmem: {}\n", error);
        return kUsageExit;
      }
    }
    return stats::run_stats(o);
  };
  return {app, run};
}

}  // namespace ptmem::cli
