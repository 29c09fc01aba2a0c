// The reason ptmem gives when the kernel refuses to let it trace: every branch of
// attach_denied, with the exact line, including Yama's ptrace_scope 1, 2 and 3, which this
// test machine's kernel may not even have.
#include <doctest/doctest.h>

#include <cerrno>
#include <unistd.h>

#include "../support/process.hpp"
#include "ptmem/ptrace/attach_denied.hpp"

using ptmem::ptrace::attach_denied;
using ptmem::ptrace::attach_facts;
using ptmem::ptrace::AttachFacts;
using ptmem::ptrace::Ids;

namespace {

// nobody (65534) attaching to a process of its own: what the kernel lets through unless
// a test changes one fact.
AttachFacts nobody_to_own(pid_t pid = 4242) {
  AttachFacts f;
  f.error = EPERM;
  f.pid = pid;
  f.target_uid = Ids{65534, 65534, 65534};
  f.target_gid = Ids{65534, 65534, 65534};
  f.own_uid = 65534;
  f.own_gid = 65534;
  f.target_user = "nobody";
  f.own_user = "nobody";
  f.dumpable = true;
  return f;
}

}  // namespace

TEST_CASE("attach_denied: another user's process, classic rules (no Yama)") {
  AttachFacts f = nobody_to_own();
  f.target_uid = Ids{0, 0, 0};
  f.target_gid = Ids{0, 0, 0};
  f.target_user = "root";
  CHECK(attach_denied(f) ==
        "process 4242 belongs to uid 0 (root) and ptmem runs as uid 65534 (nobody) without CAP_SYS_PTRACE; "
        "run ptmem as root or with CAP_SYS_PTRACE");
  // Not root's: running as that user is a way too.  Unknown names show the number alone.
  f.target_uid = Ids{1000, 1000, 1000};
  f.target_gid = Ids{1000, 1000, 1000};
  f.target_user = "";
  f.own_user = "";
  CHECK(attach_denied(f) ==
        "process 4242 belongs to uid 1000 and ptmem runs as uid 65534 without CAP_SYS_PTRACE; "
        "run ptmem as root or with CAP_SYS_PTRACE, or as uid 1000");
  // The credentials come first: a non-dumpable process of another user is still "another user's".
  f.dumpable = false;
  CHECK(attach_denied(f).starts_with("process 4242 belongs to uid 1000 and ptmem runs as uid 65534"));
}

TEST_CASE("attach_denied: another user's process under Yama says what running as that user would still need") {
  AttachFacts f = nobody_to_own();
  f.target_uid = Ids{1000, 1000, 1000};
  f.target_gid = Ids{1000, 1000, 1000};
  f.target_user = "alice";
  f.ptrace_scope = 0;
  CHECK(attach_denied(f) ==
        "process 4242 belongs to uid 1000 (alice) and ptmem runs as uid 65534 (nobody) without CAP_SYS_PTRACE; "
        "run ptmem as root or with CAP_SYS_PTRACE, or as uid 1000");
  f.ptrace_scope = 1;
  CHECK(attach_denied(f) ==
        "process 4242 belongs to uid 1000 (alice) and ptmem runs as uid 65534 (nobody) without CAP_SYS_PTRACE; "
        "run ptmem as root or with CAP_SYS_PTRACE, or as uid 1000 with ptmem launch "
        "(kernel.yama.ptrace_scope is 1: attach reaches only descendants)");
  f.ptrace_scope = 2;
  CHECK(attach_denied(f) ==
        "process 4242 belongs to uid 1000 (alice) and ptmem runs as uid 65534 (nobody) without CAP_SYS_PTRACE; "
        "run ptmem as root or with CAP_SYS_PTRACE (kernel.yama.ptrace_scope is 2: nothing else may trace)");
}

TEST_CASE("attach_denied: a setuid or setgid program of the same real user") {
  AttachFacts f = nobody_to_own();
  f.target_uid = Ids{65534, 0, 0};  // a setuid-root program nobody started
  CHECK(attach_denied(f) ==
        "process 4242 runs with credentials other than ptmem's (uid 65534/0/0, gid 65534/65534/65534 "
        "real/effective/saved; ptmem: uid 65534, gid 65534): a setuid or setgid program, which only "
        "CAP_SYS_PTRACE may trace; run ptmem as root or with CAP_SYS_PTRACE");
  f.target_uid = Ids{65534, 65534, 65534};
  f.target_gid = Ids{65534, 5, 5};  // setgid tty
  CHECK(attach_denied(f) ==
        "process 4242 runs with credentials other than ptmem's (uid 65534/65534/65534, gid 65534/5/5 "
        "real/effective/saved; ptmem: uid 65534, gid 65534): a setuid or setgid program, which only "
        "CAP_SYS_PTRACE may trace; run ptmem as root or with CAP_SYS_PTRACE");
}

TEST_CASE("attach_denied: a non-dumpable process of the same user") {
  AttachFacts f = nobody_to_own();
  f.dumpable = false;
  const std::string expected =
      "process 4242 is not dumpable (prctl(PR_SET_DUMPABLE, 0), a change of credentials, or an unreadable "
      "executable), and only CAP_SYS_PTRACE may trace such a process; run ptmem as root or with CAP_SYS_PTRACE";
  CHECK(attach_denied(f) == expected);
  f.ptrace_scope = 1;  // the kernel refuses on dumpability before Yama is asked
  CHECK(attach_denied(f) == expected);
}

TEST_CASE("attach_denied: kernel.yama.ptrace_scope 1 and a process that is not a descendant") {
  AttachFacts f = nobody_to_own();
  f.ptrace_scope = 1;
  CHECK(attach_denied(f) ==
        "kernel.yama.ptrace_scope is 1: a process may trace only its descendants, and process 4242 is not one "
        "of ptmem's; use ptmem launch, run ptmem as root or with CAP_SYS_PTRACE, or allow attaching with "
        "sysctl kernel.yama.ptrace_scope=0");
  // A descendant passes Yama's scope 1: what is left is outside the rules ptmem knows.
  f.descendant = true;
  CHECK(attach_denied(f) ==
        "refused although process 4242 has ptmem's uid and gid and is dumpable: a security module "
        "(SELinux, AppArmor) or a seccomp filter");
}

TEST_CASE("attach_denied: kernel.yama.ptrace_scope 2 lets only CAP_SYS_PTRACE trace, launch included") {
  AttachFacts f = nobody_to_own();
  f.ptrace_scope = 2;
  const std::string expected =
      "kernel.yama.ptrace_scope is 2: only a process with CAP_SYS_PTRACE may trace, and ptmem lacks it; run "
      "ptmem as root or with CAP_SYS_PTRACE, or as root lower the setting (sysctl kernel.yama.ptrace_scope=1)";
  CHECK(attach_denied(f) == expected);
  f.descendant = true;
  f.launch = true;  // scope 2 refuses even the child ptmem forked
  CHECK(attach_denied(f) == expected);
}

TEST_CASE("attach_denied: kernel.yama.ptrace_scope 3 refuses everyone, root and launch included") {
  AttachFacts f = nobody_to_own();
  f.ptrace_scope = 3;
  const std::string attach =
      "kernel.yama.ptrace_scope is 3: ptrace is disabled for every process, root's included, until reboot "
      "(the setting cannot be lowered); ptmem launch is refused too";
  CHECK(attach_denied(f) == attach);
  f.cap_sys_ptrace = true;
  f.own_uid = 0;
  CHECK(attach_denied(f) == attach);
  f.launch = true;
  f.descendant = true;
  CHECK(attach_denied(f) ==
        "kernel.yama.ptrace_scope is 3: ptrace is disabled for every process, root's included, even of one's "
        "own child (PTRACE_TRACEME is refused too), until reboot");
}

TEST_CASE("attach_denied: refused despite CAP_SYS_PTRACE") {
  AttachFacts f = nobody_to_own();
  f.cap_sys_ptrace = true;
  f.target_uid = Ids{0, 0, 0};  // credentials do not matter with the capability
  f.dumpable = false;
  for (std::optional<int> scope : {std::optional<int>{}, std::optional<int>{0}, std::optional<int>{1},
                                   std::optional<int>{2}}) {
    f.ptrace_scope = scope;
    CHECK(attach_denied(f) ==
          "refused although ptmem has CAP_SYS_PTRACE: a security module (SELinux, AppArmor), a seccomp "
          "filter, or a user namespace the capability does not cover");
  }
}

TEST_CASE("attach_denied: unreadable credentials skip to what else is known; other errors are strerror") {
  AttachFacts f = nobody_to_own();
  f.target_uid.reset();
  f.target_gid.reset();
  f.dumpable.reset();
  f.ptrace_scope = 1;
  CHECK(attach_denied(f).starts_with("kernel.yama.ptrace_scope is 1: "));
  f.error = ESRCH;
  CHECK(attach_denied(f) == "No such process");
}

TEST_CASE("attach_facts: a child of this process, read from /proc") {
  ptmem::test::Child child({"/bin/sleep", "60"});
  auto f = attach_facts(child.pid(), EPERM, false);
  CHECK(f.pid == child.pid());
  CHECK(f.error == EPERM);
  CHECK(f.descendant);
  REQUIRE(f.target_uid);
  REQUIRE(f.target_gid);
  CHECK(*f.target_uid == Ids{::getuid(), ::geteuid(), ::geteuid()});
  CHECK(*f.target_gid == Ids{::getgid(), ::getegid(), ::getegid()});
  CHECK(f.own_uid == ::getuid());
  CHECK(f.own_gid == ::getgid());
  if (::geteuid() == 0) {
    CHECK(f.own_user == "root");
    CHECK(f.cap_sys_ptrace);  // the test runs as root with its capabilities
    CHECK(!f.dumpable.has_value());  // /proc/PID is root's either way: cannot tell
  }
  // This machine's kernel may or may not have Yama; the fact follows the file.
  auto scope = ptmem::test::read_text_file("/proc/sys/kernel/yama/ptrace_scope");
  if (scope.empty()) CHECK(!f.ptrace_scope.has_value());
  else CHECK(f.ptrace_scope == std::stoi(scope));
  // pid 1 is nobody's descendant.
  CHECK(!attach_facts(1, EPERM, false).descendant);
}
