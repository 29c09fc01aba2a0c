// Driving samples/trace_attach_target.c (a busy multi-threaded target answering commands on
// stdin) from the attach tests of both engines.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"

namespace ptmem::test {

/// The target, started with its stdin a pipe.
Child start(const std::vector<std::string>& argv);
/// The reference for "sum N": the sum of i*i mod 1000003 over i < N.
unsigned long sum_squares(long n);
/// "sum N" must come back as "sum N <sum_squares(N)>".
bool sum_ok(Child& t, long n, std::string& seen);
/// Rounds done by the workers so far, or -1 when they saw corrupted data (or no answer).
long rounds(Child& t, std::string& seen);
/// How the target ended, when it did (for messages).
std::string fate(Child& t);
/// The workers make progress: rounds grow past |after| within 20 s.  "" when they do, else
/// what happened to the target.
std::string progresses(Child& t, long after, std::string& seen);
bool exited_zero(Child& t);
/// The pid in a "ready PID" line, -1 if none.
pid_t ready_pid(const std::optional<std::string>& line);

/// One line of /proc/PID/maps.
struct Mapping {
  uint64_t start = 0, end = 0, offset = 0;
  std::string perms, path;
};
std::vector<Mapping> maps_of(pid_t pid);
/// "" when the code of every executable file mapping of |pid| equals its file, else where
/// it does not: a patch, a jump or an int3 left behind.
std::string code_differs(pid_t pid);
/// Mappings ptmem could have left: its agent's and anonymous executable pages.
std::string leftovers(pid_t pid);
/// TracerPid of |pid|, -1 when unreadable.
pid_t tracer_of(pid_t pid);
/// Threads of |pid| in a stopped or traced-stopped state ("tid:state ..."), "" when none.
std::string stopped_threads(pid_t pid);

}  // namespace ptmem::test
