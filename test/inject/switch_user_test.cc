// `picket-inject bootstrap --user --group --exec` on the real binary: the sidecar ends up as uid
// 1337 holding NET_ADMIN and nothing else, across the exec into the proxy. This test plays the
// container runtime (runc) for the injected sidecar's securityContext — root, bounding set
// {NET_ADMIN, SETGID, SETUID}, no inheritable or ambient capabilities, no_new_privs — and execs
// the real picket-inject, whose --exec program reports its ids and capability sets. A control
// case plays the runtime for a non-root container with NET_ADMIN added (the old injection) and
// shows the capability gone after the exec. Root only (no-sandbox, exclusive); fails without it.
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace picket::inject {
namespace {

constexpr uint64_t kNetAdmin = uint64_t{1} << CAP_NET_ADMIN;

struct Report {
  int exit_code = -1;
  std::string text;                      // what the exec'd program wrote
  std::map<std::string, uint64_t> caps;  // CapInh, CapPrm, CapEff, CapBnd, CapAmb
};

class SwitchUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "switch_user_test needs root (it sets uids and capabilities)";
    // Under /tmp, not TEST_TMPDIR: uid 1337 must reach the binary, the script and the report
    // (Bazel's output tree is root's, mode 0700).
    char tmpl[] = "/tmp/picket-switch-user.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0777);  // the report is written as uid 1337
    script_ = dir_ + "/report.sh";
    std::ofstream(script_) << "#!/bin/sh\n"
                              "{ echo \"ids $(id -u) $(id -g) $(id -G)\"; "
                              "grep '^Cap' /proc/self/status; } > \"$PICKET_REPORT\"\n";
    chmod(script_.c_str(), 0755);
    inject_ = dir_ + "/picket-inject";
    ASSERT_EQ(std::system(("cp inject/picket-inject " + inject_).c_str()), 0);
    ASSERT_EQ(access(inject_.c_str(), X_OK), 0) << inject_;
  }

  void TearDown() override {
    if (!dir_.empty()) {
      EXPECT_EQ(std::system(("rm -rf " + dir_).c_str()), 0);
    }
  }

  // Forks; the child becomes what the runtime makes of the container (`root`: uid 0 with
  // `keep` as its only capabilities; else uid 1337 with `keep` permitted and effective, and
  // nothing inheritable or ambient), then execs picket-inject bootstrap with `extra` flags.
  Report Run(bool root, const std::vector<int>& keep, const std::vector<std::string>& extra) {
    const std::string report = dir_ + "/report-" + std::to_string(++runs_);
    unlink(report.c_str());
    pid_t pid = fork();
    if (pid == 0) {
      setenv("PICKET_REPORT", report.c_str(), 1);
      uint64_t want = 0;
      for (int cap : keep) want |= uint64_t{1} << cap;
      for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
        if ((want & (uint64_t{1} << cap)) == 0) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
      }
      if (!root) {
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(0, nullptr) != 0 ||
            setresgid(1337, 1337, 1337) != 0 || setresuid(1337, 1337, 1337) != 0) {
          _exit(101);
        }
      }
      __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
      __user_cap_data_struct data[2]{};
      data[0].permitted = data[0].effective = static_cast<uint32_t>(want);
      data[1].permitted = data[1].effective = static_cast<uint32_t>(want >> 32);
      if (syscall(SYS_capset, &header, data) != 0) _exit(102);
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(103);  // allowPrivilegeEscalation
      std::vector<std::string> args = {inject_,
                                       "bootstrap",
                                       "--namespace=x",
                                       "--pod=a",
                                       "--ip=10.77.1.1",
                                       "--policy-file=" + dir_ + "/policy.json",
                                       "--output=" + dir_ + "/bootstrap-" + std::to_string(runs_),
                                       "--exec=" + script_};
      args.insert(args.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(104);
    }
    Report r;
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::ifstream in(report);
    std::ostringstream text;
    text << in.rdbuf();
    r.text = text.str();
    std::istringstream lines(r.text);
    for (std::string line; std::getline(lines, line);) {
      auto colon = line.find(':');
      if (line.rfind("Cap", 0) == 0 && colon != std::string::npos) {
        r.caps[line.substr(0, colon)] = std::stoull(line.substr(colon + 1), nullptr, 16);
      }
    }
    return r;
  }

  std::string dir_, script_, inject_;
  int runs_ = 0;
};

TEST_F(SwitchUserTest, TheInjectedSidecarRunsAsTheProxyUidWithNetAdminOnly) {
  Report r =
      Run(/*root=*/true, {CAP_NET_ADMIN, CAP_SETGID, CAP_SETUID}, {"--user=1337", "--group=1337"});
  ASSERT_EQ(r.exit_code, 0) << r.text;
  EXPECT_NE(r.text.find("ids 1337 1337 1337\n"), std::string::npos) << r.text;
  EXPECT_EQ(r.caps["CapEff"], kNetAdmin) << r.text;
  EXPECT_EQ(r.caps["CapPrm"], kNetAdmin) << r.text;
  EXPECT_EQ(r.caps["CapAmb"], kNetAdmin) << r.text;  // and so on into its children
}

TEST_F(SwitchUserTest, WithoutNetAdminGrantedNothingIsGainedAndTheSwitchStillHappens) {
  Report r = Run(/*root=*/true, {CAP_SETGID, CAP_SETUID}, {"--user=1337"});
  ASSERT_EQ(r.exit_code, 0) << r.text;
  EXPECT_NE(r.text.find("ids 1337 1337 1337\n"), std::string::npos) << r.text;
  EXPECT_EQ(r.caps["CapEff"], 0u) << r.text;
  EXPECT_EQ(r.caps["CapPrm"], 0u) << r.text;
}

// Why the switch exists: NET_ADMIN added to a container that runs as uid 1337 is gone once the
// container's first program execs the next one.
TEST_F(SwitchUserTest, ANonRootContainersAddedCapabilityIsLostAtExecWithoutIt) {
  Report r = Run(/*root=*/false, {CAP_NET_ADMIN}, {});
  ASSERT_EQ(r.exit_code, 0) << r.text;
  EXPECT_NE(r.text.find("ids 1337 1337"), std::string::npos) << r.text;
  EXPECT_EQ(r.caps["CapEff"], 0u) << r.text;
}

TEST_F(SwitchUserTest, SwitchingNeedsRootAndAnExec) {
  Report r = Run(/*root=*/false, {CAP_NET_ADMIN}, {"--user=1000"});
  EXPECT_EQ(r.exit_code, 1) << r.text;
  EXPECT_TRUE(r.text.empty()) << "the program ran: " << r.text;

  pid_t pid = fork();
  if (pid == 0) {
    execl(inject_.c_str(), inject_.c_str(), "bootstrap", "--namespace=x", "--pod=a",
          "--ip=10.77.1.1", "--policy-file=/p.json", "--user=1337", nullptr);
    _exit(104);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
}  // namespace picket::inject
