// inject/redirect_installer.cc — see redirect_installer.h.
#include "inject/redirect_installer.h"

#include <utility>
#include <vector>

#include "inject/datagram_rules.h"
#include "inject/listener_guard.h"
#include "inject/verdict_rules.h"

namespace picket::inject {
namespace {

using base::Error;

struct FamilyTools {
  Family family;
  std::string restore;
  std::string save;
};

std::vector<FamilyTools> Families(const InitCommand& cmd) {
  std::vector<FamilyTools> out{{Family::kIPv4, cmd.iptables_restore, cmd.iptables_save}};
  if (cmd.config.ipv6) out.push_back({Family::kIPv6, cmd.ip6tables_restore, cmd.ip6tables_save});
  return out;
}

std::string Describe(const std::vector<std::string>& argv, const CommandResult& r) {
  std::string msg = "`" + CommandLine(argv) + "` exited with status " + std::to_string(r.exit_code);
  std::string err = r.err.empty() ? r.out : r.err;
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  if (!err.empty()) msg += ": " + err;
  return msg;
}

// Runs a command; a non-zero exit is an error carrying stderr.
base::Result<std::string> Run(CommandRunner& runner, const std::vector<std::string>& argv,
                              const std::string& input) {
  auto r = runner.Run(argv, input);
  if (!r) return std::unexpected(Error(r.error()).Context("`" + CommandLine(argv) + "`"));
  if (r->exit_code != 0) return std::unexpected(Error::Of(Describe(argv, *r)));
  return r->out;
}

struct Snapshot {
  FamilyTools tools;
  std::string table;   // "nat" (capture) or "filter" (the listener guard)
  std::string saved;   // iptables-save -t <table> output before we touched anything
  std::string mangle;  // with "nat": iptables-save -t mangle (the verdict queue rules)
  std::string raw;     // with "nat": iptables-save -t raw (verdict mode's NOTRACK rules)
};

// Restores each snapshot; returns the problems it met (empty on success).
std::string Rollback(CommandRunner& runner, const std::vector<Snapshot>& changed) {
  std::string problems;
  for (auto it = changed.rbegin(); it != changed.rend(); ++it) {
    std::vector<std::pair<std::string, const std::string*>> tables{{it->table, &it->saved}};
    if (it->table == "nat") {
      tables.insert(tables.begin(), {{"raw", &it->raw}, {"mangle", &it->mangle}});
    }
    for (const auto& [table, saved] : tables) {
      auto r = Run(runner, {it->tools.restore, "-T", table}, *saved);
      if (!r)
        problems += "; rollback of " + std::string(FamilyName(it->tools.family)) + " " + table +
                    " failed too: " + r.error().ToString();
    }
  }
  return problems;
}

// `ip -6 addr replace ::7/128 dev lo` (empty when there is nothing to add).
std::vector<std::string> PassthroughAddressArgv(const InitCommand& cmd, const char* verb) {
  const std::string& addr = cmd.config.inbound_passthrough_v6;
  if (!cmd.config.ipv6 || addr.empty()) return {};
  return {cmd.ip, "-6", "addr", verb, addr + "/128", "dev", "lo"};
}

enum class Mode { kInstall, kCleanup };

// The listener guard (inject/listener_guard.h) lives in each family's filter table: snapshot it
// after the nat tables, so one rollback covers both.
base::Result<void> SaveGuardTables(const InitCommand& cmd, CommandRunner& runner,
                                   std::vector<Snapshot>* snapshots) {
  for (const FamilyTools& tools : Families(cmd)) {
    auto saved = Run(runner, {tools.save, "-t", "filter"}, "");
    if (!saved) {
      return std::unexpected(
          std::move(saved.error())
              .Context(std::string(FamilyName(tools.family)) + ": cannot read the filter table"));
    }
    snapshots->push_back({tools, "filter", *saved, "", ""});
  }
  return {};
}

// The guard, in verdict mode the TCP reject chain, and the UDP/SCTP chains for packets conntrack
// cannot place (each removed when not wanted, and by cleanup).
base::Result<std::string> FilterTransaction(const InitCommand& cmd, const Snapshot& snap,
                                            Mode mode) {
  GuardState guard = ParseGuardState(snap.saved);
  RejectState reject = ParseRejectState(snap.saved);
  NatState datagrams = ParseDatagramFilterState(snap.saved);
  if (mode == Mode::kInstall) {
    return BuildFilterTransaction(cmd.config, snap.tools.family, guard, reject, datagrams);
  }
  return BuildFilterCleanupTransaction(guard, reject, datagrams);
}

base::Result<void> Apply(const InitCommand& cmd, CommandRunner& runner, Mode mode) {
  std::vector<Snapshot> snapshots;
  for (const FamilyTools& tools : Families(cmd)) {
    auto saved = Run(runner, {tools.save, "-t", "nat"}, "");
    if (!saved) {
      Error e = std::move(saved.error())
                    .Context(std::string(FamilyName(tools.family)) + ": cannot read the nat table");
      if (tools.family == Family::kIPv6) {
        e.reason += " (pass --ipv6=false to leave IPv6 uncaptured on purpose)";
      }
      return std::unexpected(std::move(e));
    }
    NatState state = ParseNatState(*saved);
    if (mode == Mode::kInstall && !state.foreign_chains.empty()) {
      return std::unexpected(Error::Of(std::string(FamilyName(tools.family)) + ": chain " +
                                       state.foreign_chains.front() +
                                       " of another mesh's capture rules is present; refusing to "
                                       "redirect the same traffic twice"));
    }
    auto mangle = Run(runner, {tools.save, "-t", "mangle"}, "");
    if (!mangle) {
      return std::unexpected(
          std::move(mangle.error())
              .Context(std::string(FamilyName(tools.family)) + ": cannot read the mangle table"));
    }
    auto raw = Run(runner, {tools.save, "-t", "raw"}, "");
    if (!raw) {
      return std::unexpected(
          std::move(raw.error())
              .Context(std::string(FamilyName(tools.family)) + ": cannot read the raw table"));
    }
    snapshots.push_back({tools, "nat", *saved, *mangle, *raw});
  }
  if (auto guard = SaveGuardTables(cmd, runner, &snapshots); !guard) return guard;

  std::vector<Snapshot> changed;
  for (const Snapshot& snap : snapshots) {
    std::string transaction;
    if (snap.table == "filter") {
      auto f = FilterTransaction(cmd, snap, mode);
      if (!f) {
        Error e = std::move(f.error());
        e.reason += Rollback(runner, changed);
        return std::unexpected(std::move(e));
      }
      transaction = *f;
      if (transaction.empty()) continue;
    } else if (mode == Mode::kInstall) {
      NatState state = ParseNatState(snap.saved);
      NatState mangle = ParseMangleState(snap.mangle);
      auto t = BuildInstallTransaction(cmd.config, snap.tools.family, state);
      auto d = BuildMangleTransaction(cmd.config, snap.tools.family, mangle);
      auto raw = BuildRawTransaction(cmd.config, snap.tools.family, ParseRawState(snap.raw));
      if (!t || !d || !raw) {
        Error e = !t ? std::move(t.error()) : !d ? std::move(d.error()) : std::move(raw.error());
        e.reason += Rollback(runner, changed);
        return std::unexpected(std::move(e));
      }
      transaction = *t + *d + *raw;
    } else {
      transaction = BuildCleanupTransaction(ParseNatState(snap.saved)) +
                    BuildMangleCleanupTransaction(ParseMangleState(snap.mangle)) +
                    BuildRawCleanupTransaction(ParseRawState(snap.raw));
      if (transaction.empty()) continue;
    }
    // Counted as changed before running: a failed restore is atomic, but restoring the
    // snapshot of an unchanged table is harmless and covers a partial apply by a broken binary.
    changed.push_back(snap);
    auto r = Run(runner, {snap.tools.restore, "--noflush"}, transaction);
    if (!r) {
      Error e = std::move(r.error()).Context(FamilyName(snap.tools.family));
      e.reason += Rollback(runner, changed);
      return std::unexpected(std::move(e));
    }
  }
  return {};
}

}  // namespace

base::Result<std::string> DryRunText(const InitCommand& cmd) {
  std::string out;
  for (const FamilyTools& tools : Families(cmd)) {
    auto t = BuildInstallTransaction(cmd.config, tools.family);
    if (!t) return std::unexpected(t.error());
    auto d = BuildMangleTransaction(cmd.config, tools.family);
    if (!d) return std::unexpected(d.error());
    auto raw = BuildRawTransaction(cmd.config, tools.family);
    if (!raw) return std::unexpected(raw.error());
    out += "# " + std::string(FamilyName(tools.family)) + ": " + tools.restore + " --noflush\n";
    out += *t + *d + *raw;
  }
  const bool verdict = cmd.config.capture == config::CaptureMode::kVerdict;
  for (const FamilyTools& tools : Families(cmd)) {
    auto filter = BuildFilterTransaction(cmd.config, tools.family, {}, {});
    if (!filter) return std::unexpected(filter.error());
    out += "# " + std::string(FamilyName(tools.family)) + " listener guard" +
           (verdict ? ", TCP verdict reject" : "") +
           (cmd.config.capture_datagrams ? ", UDP/SCTP packets conntrack cannot place" : "") +
           ": " + tools.restore + " --noflush\n" + *filter;
  }
  if (!cmd.config.ipv6) out += "# IPv6: disabled (--ipv6=false); ip6tables left unchanged\n";
  if (auto argv = PassthroughAddressArgv(cmd, "replace"); !argv.empty()) {
    out +=
        "# IPv6 inbound passthrough source on lo (before the rules):\n" + CommandLine(argv) + "\n";
  }
  return out;
}

base::Result<void> AddPassthroughAddress(const InitCommand& cmd, CommandRunner& runner) {
  auto argv = PassthroughAddressArgv(cmd, "replace");
  if (argv.empty()) return {};
  if (auto r = Run(runner, argv, ""); !r) {
    return std::unexpected(std::move(r.error()).Context("IPv6 passthrough source"));
  }
  return {};
}

base::Result<void> RemovePassthroughAddress(const InitCommand& cmd, CommandRunner& runner) {
  auto argv = PassthroughAddressArgv(cmd, "del");
  if (argv.empty()) return {};
  auto shown = Run(runner, {cmd.ip, "-6", "-o", "addr", "show", "dev", "lo"}, "");
  if (!shown) return std::unexpected(std::move(shown.error()).Context("IPv6 passthrough source"));
  // `ip -o` prints one line per address: "1: lo    inet6 ::7/128 scope host ...".
  if (shown->find(" " + cmd.config.inbound_passthrough_v6 + "/128 ") == std::string::npos) {
    return {};
  }
  if (auto r = Run(runner, argv, ""); !r) {
    return std::unexpected(std::move(r.error()).Context("IPv6 passthrough source"));
  }
  return {};
}

base::Result<void> InstallRules(const InitCommand& cmd, CommandRunner& runner) {
  return Apply(cmd, runner, Mode::kInstall);
}

base::Result<void> CleanupRules(const InitCommand& cmd, CommandRunner& runner) {
  return Apply(cmd, runner, Mode::kCleanup);
}

}  // namespace picket::inject
