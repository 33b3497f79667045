// The flow log's admission under floods, driven through its API with an injected clock.
#include "proxy/flow_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>
#include <sstream>

#include "test/filters/fake_policy.h"

namespace picket::proxy {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class FlowLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    config_.path = std::string(std::getenv("TEST_TMPDIR")) + "/flows-" + std::to_string(getpid()) +
                   "-" + std::to_string(n++) + ".log";
    config_.max_size_bytes = 1ull << 30;  // no rotation: every line stays readable
    config_.rate_per_source = 50;
    config_.lines_per_second = 1000;
    config_.bytes_per_second = 1024 * 1024;
    config_.recent_tuples = 4096;
  }
  void TearDown() override {
    if (log_) log_->Stop();
    unlink(config_.path.c_str());
  }

  void Start() {
    log_ = std::make_unique<FlowLog>(config_, NodeIdentity{"default", "client", ""}, stats_,
                                     [this] { return Now(); });
    std::string error;
    ASSERT_TRUE(log_->Start(&error)) << error;
  }
  FlowLog::Clock::time_point Now() const {
    return FlowLog::Clock::time_point(std::chrono::nanoseconds(now_ns_.load()));
  }
  void Advance(std::chrono::nanoseconds d) { now_ns_ += d.count(); }

  static policy::IpAddress Source(int i) {
    policy::IpAddress a = *policy::IpAddress::Parse("2001:db8::");
    a.bytes[13] = static_cast<uint8_t>(i >> 16);
    a.bytes[14] = static_cast<uint8_t>(i >> 8);
    a.bytes[15] = static_cast<uint8_t>(i);
    return a;
  }
  static FlowRecord Denial(int source, uint16_t port) {
    FlowRecord r;
    r.time = std::chrono::system_clock::time_point(seconds(1700000000));
    r.forwarded = false;
    r.close_reason = filters::CloseReason::kPolicyDenied;
    r.direction = filters::Direction::kInbound;
    r.source = {Source(source), 40000};
    r.destination = {*policy::IpAddress::Parse("2001:db8::ffff"), port};
    r.policies = {"default/deny-all"};
    r.detail = "none of the rules of default/deny-all matched";
    return r;
  }
  // Denials through the worker's fast path.
  void Deny(int source, uint16_t port) {
    FlowRecord r = Denial(source, port);
    auto admission = log_->AdmitDenial(r.source, r.destination, r.direction);
    log_->SubmitAdmitted(std::move(r), admission);
  }

  // Lines written since the last call.
  std::vector<std::string> NewLines() {
    log_->Flush();
    std::ifstream in(config_.path);
    in.seekg(static_cast<std::streamoff>(offset_));
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) {
      offset_ += line.size() + 1;
      out.push_back(line);
    }
    return out;
  }
  static bool IsFlow(const std::string& line) { return line.rfind("{\"flow\":", 0) == 0; }
  static bool IsSummary(const std::string& line) { return line.rfind("{\"suppressed\":", 0) == 0; }
  static uint64_t Field(const std::string& line, const std::string& key) {
    size_t at = line.find("\"" + key + "\":");
    if (at == std::string::npos) return 0;
    return std::stoull(line.substr(at + key.size() + 3));
  }

  config::Bootstrap::FlowLog config_;
  Stats stats_;
  std::atomic<int64_t> now_ns_{int64_t{1000} * 1000000000};
  std::unique_ptr<FlowLog> log_;
  size_t offset_ = 0;
};

// The stdout sink's writes: whole lines, each chunk at most the limit (PIPE_BUF in the sink),
// a longer line alone, nothing lost or reordered.
TEST(WholeLineChunksTest, PacksWholeLinesUpToTheLimit) {
  const std::string a(5, 'a'), b(3, 'b'), c(9, 'c');
  const std::string lines = a + "\n" + b + "\n" + c + "\n" + b + "\n";
  const std::vector<std::string_view> chunks = WholeLineChunks(lines, 10);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0], a + "\n" + b + "\n");  // 10 bytes: fits exactly
  EXPECT_EQ(chunks[1], c + "\n");             // 10 bytes
  EXPECT_EQ(chunks[2], b + "\n");
  const std::string long_line = std::string(25, 'x') + "\n";
  const std::string with_long = b + "\n" + long_line + b + "\n";  // outlives the views
  const std::vector<std::string_view> alone = WholeLineChunks(with_long, 10);
  ASSERT_EQ(alone.size(), 3u);
  EXPECT_EQ(alone[1], long_line);
  EXPECT_TRUE(WholeLineChunks("", 10).empty());
  // PIPE_BUF-sized chunks of a real batch: every chunk ends a line, the concatenation is exact.
  std::string batch;
  for (int i = 0; i < 500; ++i) batch += std::string(static_cast<size_t>(40 + i % 90), 'r') + "\n";
  std::string joined;
  for (std::string_view chunk : WholeLineChunks(batch, 4096)) {
    EXPECT_LE(chunk.size(), 4096u);
    EXPECT_EQ(chunk.back(), '\n');
    joined += chunk;
  }
  EXPECT_EQ(joined, batch);
}

TEST_F(FlowLogTest, GlobalBudgetHoldsUnderAThousandSourceFlood) {
  Start();
  uint64_t submitted = 0, written = 0, reported = 0;
  for (int interval = 0; interval < 5; ++interval) {
    for (int round = 0; round < 20; ++round) {
      for (int s = 0; s < 1000; ++s) {
        Deny(s, static_cast<uint16_t>(80 + round % 3));
        ++submitted;
      }
      Advance(milliseconds(40));  // 20 rounds: 800 ms of a 20k/s flood
    }
    std::vector<std::string> lines = NewLines();
    uint64_t flows = 0, bytes = 0;
    for (const std::string& l : lines) {
      if (IsFlow(l)) {
        ++flows;
        bytes += l.size() + 1;
      } else if (IsSummary(l)) {
        reported += Field(l, "suppressed");
      }
    }
    EXPECT_LE(flows, config_.lines_per_second) << "interval " << interval;
    EXPECT_GE(flows, config_.lines_per_second * 3 / 4) << "the budget is used, not starved";
    EXPECT_LE(bytes, config_.bytes_per_second);
    written += flows;
    Advance(milliseconds(200));  // the next interval (and the summary tick)
  }
  Advance(seconds(1));
  for (const std::string& l : NewLines()) {
    if (IsSummary(l)) reported += Field(l, "suppressed");
  }
  EXPECT_EQ(written + reported, submitted) << "every record is written or reported";
  EXPECT_EQ(stats_.flow_records_suppressed.load(), reported);
}

TEST_F(FlowLogTest, ByteBudgetHoldsAndIsReported) {
  config_.bytes_per_second = 20000;  // ~50 lines of ~400 bytes
  Start();
  for (int interval = 0; interval < 3; ++interval) {
    for (int s = 0; s < 1000; ++s) Deny(s, 80);
    std::vector<std::string> lines = NewLines();
    uint64_t bytes = 0, flows = 0, global_bytes = 0;
    for (const std::string& l : lines) {
      if (IsFlow(l)) {
        bytes += l.size() + 1;
        ++flows;
      }
      if (IsSummary(l)) global_bytes += Field(l, "global_bytes");
    }
    EXPECT_LE(bytes, config_.bytes_per_second);
    EXPECT_GT(flows, 10u);
    if (interval > 0) {
      EXPECT_GT(global_bytes, 0u) << "the previous interval's summary";
    }
    Advance(seconds(1));
  }
}

TEST_F(FlowLogTest, SummaryCountsReasonsAndTopSourcesOncePerInterval) {
  Start();
  for (int i = 0; i < 200; ++i) Deny(7, 80);  // first-seen + 50 tokens = 51 written
  std::vector<std::string> lines = NewLines();
  EXPECT_EQ(lines.size(), 51u);
  Advance(seconds(1));
  lines = NewLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("{\"suppressed\":149,\"by_reason\":{\"per_source\":149},"
                          "\"top_sources\":[{\"source\":\"2001:db8::7\",\"count\":149}],"
                          "\"interval_ms\":1000,"),
            std::string::npos)
      << lines[0];
  // A quiet interval writes no summary.
  Advance(seconds(1));
  EXPECT_TRUE(NewLines().empty());
}

TEST_F(FlowLogTest, FirstDenialOfANewTupleIsWrittenWhileOlderOnesAreSuppressed) {
  Start();
  for (int s = 0; s < 1000; ++s) Deny(s, 80);  // 1000 tuples, all first seen: all written
  EXPECT_EQ(NewLines().size(), 1000u);
  Advance(seconds(1));
  // The same tuples flood: they may use the budget minus the reserve, no more.
  for (int round = 0; round < 20; ++round) {
    for (int s = 0; s < 1000; ++s) Deny(s, 80);
  }
  // New tuples arrive in the middle of it: new sources, and an old source on a new port.
  for (int s = 5000; s < 5100; ++s) Deny(s, 80);
  Deny(3, 443);
  for (int s = 0; s < 1000; ++s) Deny(s, 80);
  std::vector<std::string> lines = NewLines();
  uint64_t flows = 0;
  std::set<std::string> new_tuples;
  for (const std::string& l : lines) {
    if (!IsFlow(l)) continue;
    ++flows;
    if (Field(l, "destination_port") == 443) new_tuples.insert("443");
    for (int n = 5000; n < 5100; ++n) {
      if (l.find("\"source\":\"" + Source(n).ToString() + "\"") != std::string::npos) {
        new_tuples.insert(Source(n).ToString());
      }
    }
  }
  EXPECT_EQ(new_tuples.size(), 101u);
  EXPECT_EQ(flows, 750u + 101u) << "older tuples stop at the reserve; new ones use it";
  // Their second denial is an older tuple's like any other: suppressed now.
  Deny(3, 443);
  EXPECT_TRUE(NewLines().empty());
}

TEST_F(FlowLogTest, PolicyChangeRevokingFiveHundredWritesOneRecord) {
  Start();
  auto v2 = std::make_shared<testing::FakePolicy>("v2", std::set<uint16_t>{}, std::set<uint16_t>{});
  for (int i = 0; i < 500; ++i) {
    FlowRecord r = Denial(i % 3, 8080);  // three sources: the per-source limit would bite
    r.close_reason = filters::CloseReason::kPolicyChanged;
    r.relayed = true;
    r.connection_id = static_cast<uint64_t>(i);
    r.policies = {i % 2 ? "default/allow-web" : "default/allow-api"};
    r.policy = v2;
    log_->Submit(std::move(r));
  }
  std::vector<std::string> lines = NewLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("{\"policy_changed\":{\"count\":500,\"policy_version\":\"v2\","
                           "\"policies\":[\"default/allow-api\",\"default/allow-web\"],"
                           "\"sample\":[{\"flow\":",
                           0),
            0u)
      << lines[0];
  EXPECT_EQ(log_->Recent("DROPPED").size(), 1u);
  EXPECT_EQ(stats_.flow_records_suppressed.load(), 0u);
  Advance(seconds(1));
  EXPECT_TRUE(NewLines().empty()) << "nothing was suppressed";
}

}  // namespace
}  // namespace picket::proxy
