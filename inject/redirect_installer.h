// inject/redirect_installer.h — applying and removing the capture rules, all or nothing.
//
// Owns: the install / cleanup procedures of picket-init on top of a `CommandRunner`:
//   1. for each family (IPv4, then IPv6 unless disabled) snapshot the nat and mangle tables
//      (`iptables-save -t nat`, `-t mangle`), refuse if another mesh's capture chains are present;
//      then snapshot each family's filter table (the listener guard, inject/listener_guard.h);
//   2. apply one `iptables-restore --noflush` transaction per family and table group (atomic
//      each): the TCP redirect (nat) with the UDP/SCTP verdict queue (mangle,
//      inject/datagram_rules.h), then the listener guard (filter). In verdict mode
//      (`--capture=verdict`, inject/verdict_rules.h) the same mangle transaction holds the TCP
//      verdict chains and the same filter transaction the TCP reject chain; in relay mode those
//      are removed if an earlier run left them, so switching modes converges;
//   3. if any step fails, restore every table already changed from its snapshot
//      (`iptables-restore -T mangle`, `-T nat`, `-T filter`), so the namespace is exactly as
//      before the run, and report the failing command with its stderr.
// Cleanup removes every PICKET_* chain of those tables and every jump into one, per family, the
// same way.
// The IPv6 inbound passthrough source (default `::7`) must be an address of `lo` for the sidecar
// to bind it (IPv4's 127.0.0.7 is already in 127.0.0.0/8): AddPassthroughAddress puts it there
// (`ip -6 addr replace`, idempotent), RemovePassthroughAddress takes it away if present.
// Re-running install converges to the same rules (see BuildInstallTransaction).
//
// Single-threaded; no globals.
#pragma once

#include <expected>
#include <string>

#include "base/error.h"
#include "inject/command.h"
#include "inject/redirect_rules.h"

namespace picket::inject {

// What --dry-run prints: each family's command line and its restore input, for a namespace
// without Picket rules (a dry run reads nothing).
[[nodiscard]] base::Result<std::string> DryRunText(const InitCommand& cmd);

// Installs (or refreshes) the rules. On error, nothing was changed (or everything changed was
// rolled back); the message names the failing command and carries its stderr.
[[nodiscard]] base::Result<void> InstallRules(const InitCommand& cmd, CommandRunner& runner);

// Removes everything Picket added, in every enabled family. Nothing to remove is success.
[[nodiscard]] base::Result<void> CleanupRules(const InitCommand& cmd, CommandRunner& runner);

// The IPv6 passthrough source on `lo`: added before the rules are installed (a failure changes
// nothing), removed after cleanup. No-ops when IPv6 is disabled or the v6 source is empty.
// Removing an address that is not there is success.
[[nodiscard]] base::Result<void> AddPassthroughAddress(const InitCommand& cmd,
                                                       CommandRunner& runner);
[[nodiscard]] base::Result<void> RemovePassthroughAddress(const InitCommand& cmd,
                                                          CommandRunner& runner);

}  // namespace picket::inject
