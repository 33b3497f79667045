// test/filters/fake_policy.h — a hand-written EndpointPolicy for filter and proxy tests.
//
// The real seam is the policy source: these tests check what the proxy does with a verdict, not
// how //policy computes it (test/policy/ does that). Allowed egress/ingress are given as ports;
// every other port is denied by a fixed policy name. Immutable once shared.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "policy/endpoint_policy.h"

namespace picket::testing {

class FakePolicy final : public policy::EndpointPolicy {
 public:
  FakePolicy(std::string version, std::set<uint16_t> egress_ports, std::set<uint16_t> ingress_ports,
             std::string ns = "default", std::string name = "client")
      : version_(std::move(version)),
        ns_(std::move(ns)),
        name_(std::move(name)),
        egress_(std::move(egress_ports)),
        ingress_(std::move(ingress_ports)) {}

  const std::string& version() const override { return version_; }
  const std::string& pod_namespace() const override { return ns_; }
  const std::string& pod_name() const override { return name_; }

  policy::Decision CheckEgress(const policy::IpAddress&, uint16_t port,
                               config::Protocol) const override {
    return Decide(egress_.count(port) > 0, "default/egress-policy");
  }
  policy::Decision CheckIngress(const policy::IpAddress&, uint16_t port,
                                config::Protocol) const override {
    return Decide(ingress_.count(port) > 0, "default/ingress-policy");
  }
  const policy::PeerInfo* LookupPeer(const policy::IpAddress& address) const override {
    auto it = peers_.find(address.ToString());
    return it == peers_.end() ? nullptr : &it->second;
  }
  std::string Encode() const override { return "{\"version\":\"" + version_ + "\"}"; }

  void AddPeer(const std::string& ip, policy::PeerInfo info) { peers_[ip] = std::move(info); }

 private:
  static policy::Decision Decide(bool allowed, const std::string& policy_name) {
    policy::Decision d;
    d.allowed = allowed;
    d.reason = allowed ? "" : "policy_denied";
    d.policies = {policy_name};
    d.detail =
        allowed ? "allowed by " + policy_name : "none of the rules of " + policy_name + " matched";
    return d;
  }
  std::string version_, ns_, name_;
  std::set<uint16_t> egress_, ingress_;
  std::map<std::string, policy::PeerInfo> peers_;
};

}  // namespace picket::testing
