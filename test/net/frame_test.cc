#include "net/frame.h"

#include <gtest/gtest.h>

namespace picket::net {
namespace {

TEST(FrameTest, DecodesFramesSplitAtEveryByte) {
  const std::string stream = EncodeFrame("hello") + EncodeFrame("{}") + EncodeFrame("x");
  FrameDecoder decoder(64);
  std::vector<std::string> got;
  for (char c : stream) {
    decoder.Feed(std::string_view(&c, 1));
    while (true) {
      auto f = decoder.Next();
      ASSERT_TRUE(f.has_value()) << f.error().ToString();
      if (!f->has_value()) break;
      got.push_back(**f);
    }
  }
  EXPECT_EQ(got, (std::vector<std::string>{"hello", "{}", "x"}));
  EXPECT_FALSE(decoder.mid_frame());
}

TEST(FrameTest, TruncatedFrameWaitsAndReportsMidFrame) {
  FrameDecoder decoder;
  decoder.Feed(EncodeFrame("abcdef").substr(0, 7));
  auto f = decoder.Next();
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(f->has_value());
  EXPECT_TRUE(decoder.mid_frame());
}

TEST(FrameTest, OversizedAndEmptyFramesAreStickyErrors) {
  FrameDecoder decoder(16);
  decoder.Feed(std::string("\x00\x00\x00\x11", 4));
  auto f = decoder.Next();
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().ToString(), "frame: body of 17 bytes exceeds the limit of 16");
  // Refused on the header alone, and nothing of it is kept.
  EXPECT_TRUE(decoder.too_large());
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  decoder.Feed(EncodeFrame("ok"));
  EXPECT_FALSE(decoder.Next().has_value());
  EXPECT_EQ(decoder.buffered_bytes(), 0u);

  FrameDecoder empty;
  empty.Feed(std::string(4, '\0'));
  auto e = empty.Next();
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().ToString(), "frame: empty frame body");
  EXPECT_FALSE(empty.too_large());
}

TEST(FrameTest, LengthIsBigEndian) {
  const std::string f = EncodeFrame(std::string(258, 'a'));
  EXPECT_EQ(f.substr(0, 4), std::string("\x00\x00\x01\x02", 4));
}

}  // namespace
}  // namespace picket::net
