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
    return Decide(egress_.count(port) > 0, egress_texts_);
  }
  policy::Decision CheckIngress(const policy::IpAddress&, uint16_t port,
                                config::Protocol) const override {
    return Decide(ingress_.count(port) > 0, ingress_texts_);
  }
  const policy::PeerInfo* LookupPeer(const policy::IpAddress& address) const override {
    auto it = peers_.find(address.ToString());
    return it == peers_.end() ? nullptr : &it->second;
  }
  std::string Encode() const override { return "{\"version\":\"" + version_ + "\"}"; }

  void AddPeer(const std::string& ip, policy::PeerInfo info) { peers_[ip] = std::move(info); }

 private:
  // What a decision refers to (a Decision is a view into its policy).
  struct Texts {
    explicit Texts(std::string policy_name)
        : policy(std::move(policy_name)),
          allowed("allowed by " + policy),
          denied("none of the rules of " + policy + " matched") {}
    std::string policy, allowed, denied;
  };
  static policy::Decision Decide(bool allowed, const Texts& texts) {
    policy::Decision d;
    d.allowed = allowed;
    d.reason = allowed ? "" : "policy_denied";
    d.policies = std::span<const std::string>(&texts.policy, 1);
    d.detail = allowed ? texts.allowed : texts.denied;
    return d;
  }
  const Texts egress_texts_{"default/egress-policy"};
  const Texts ingress_texts_{"default/ingress-policy"};
  std::string version_, ns_, name_;
  std::set<uint16_t> egress_, ingress_;
  std::map<std::string, policy::PeerInfo> peers_;
};

}  // namespace picket::testing
