// net/frame.h — length-prefixed framing of the control protocol (control/PROTOCOL.md §2).
//
// Owns: `EncodeFrame` (4-byte big-endian body length, then the body) and `FrameDecoder`, which
// turns an untrusted byte stream, delivered in arbitrary pieces, into whole frame bodies. A
// header announcing an empty or oversized body is an error as soon as the header is complete
// (before its body is buffered); after an error the decoder stays
// failed (the connection must be closed). No I/O here: the caller feeds bytes it read.
//
// Thread-compatible; one decoder per connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace picket::net {

inline constexpr size_t kFrameHeaderSize = 4;
// Default cap on a frame body: a full policy snapshot for a large pod fits well within this.
// It bounds what a sidecar accepts from the control server.
inline constexpr uint32_t kDefaultMaxFrameSize = 16u << 20;
// Default cap on a frame the control server accepts from a sidecar: requests carry names and
// versions only (a delta resume of ~100k resources fits), and every byte of a partial frame is
// held in memory until it completes, so this is what one stream may make the server buffer.
inline constexpr uint32_t kDefaultMaxRequestFrameSize = 4u << 20;

// Appends the framed `body` to `out`.
void AppendFrame(std::string& out, std::string_view body);
std::string EncodeFrame(std::string_view body);
// `framed` is kFrameHeaderSize placeholder bytes followed by a body: writes the header for it.
void SetFrameHeader(std::string& framed);

class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_frame_size = kDefaultMaxFrameSize)
      : max_frame_size_(max_frame_size) {}

  // Buffers `bytes`. Never fails; errors surface from Next().
  void Feed(std::string_view bytes);

  // The next whole frame body; std::nullopt when more bytes are needed; an error when the
  // stream is malformed (then every later call returns the same error).
  [[nodiscard]] base::Result<std::optional<std::string>> Next();

  // True when a frame has begun but not finished: a peer closing now truncated it.
  bool mid_frame() const { return buffer_.size() > consumed_; }
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }
  // True once Next() failed because a header announced a body over the limit.
  bool too_large() const { return too_large_; }

 private:
  uint32_t max_frame_size_;
  std::string buffer_;
  size_t consumed_ = 0;
  std::optional<base::Error> error_;
  bool too_large_ = false;
};

}  // namespace picket::net
