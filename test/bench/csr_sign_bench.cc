// Certificate issuance cost in picket-control (control/ca.h), per certificate, CPU only (the
// TokenReview is a network round trip, not counted): parsing and verifying a sidecar's P-256 CSR,
// then signing its leaf with a P-256 CA. 1,000 distinct CSRs are made up front and signed in
// turn. Goal: under 2 ms of CPU per certificate. Numbers: test/bench/README.md.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "control/ca.h"
#include "control/certs.h"
#include "test/control/csr_test_util.h"

namespace {

using picket::control::CertificateAuthority;

struct Fixture {
  std::shared_ptr<const CertificateAuthority> ca;
  std::vector<std::string> csrs;

  Fixture() {
    auto pair = picket::control::MakeCa("bench CA", 1);
    ca = *CertificateAuthority::FromPem(pair->cert_pem, pair->key_pem);
    for (int i = 0; i < 1000; ++i) {
      csrs.push_back(picket::testing::MakeTestCsr(picket::testing::CsrKey::kP256, "x").pem);
    }
  }
};

const Fixture& Get() {
  static const Fixture f;
  return f;
}

void BM_VerifyCsr(benchmark::State& state) {
  const Fixture& f = Get();
  size_t i = 0;
  for (auto _ : state) {
    auto csr = CertificateAuthority::VerifyCsr(f.csrs[i++ % f.csrs.size()]);
    if (!csr) state.SkipWithError(csr.error().message.c_str());
    benchmark::DoNotOptimize(csr);
  }
}
BENCHMARK(BM_VerifyCsr)->MeasureProcessCPUTime();

// What one issuance costs: parse + verify the CSR, sign the leaf, PEM out.
void BM_IssueCertificate(benchmark::State& state) {
  const Fixture& f = Get();
  size_t i = 0;
  for (auto _ : state) {
    const std::string uri = "spiffe://cluster.local/ns/prod/pod/web-" + std::to_string(i);
    auto issued = f.ca->Sign(f.csrs[i++ % f.csrs.size()], uri, std::chrono::hours(24));
    if (!issued) state.SkipWithError(issued.error().message.c_str());
    benchmark::DoNotOptimize(issued);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_IssueCertificate)
    ->Iterations(1000)
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
