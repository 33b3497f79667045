// net/frame.cc — see frame.h.
#include "net/frame.h"

namespace picket::net {

void AppendFrame(std::string& out, std::string_view body) {
  const auto n = static_cast<uint32_t>(body.size());
  out += static_cast<char>((n >> 24) & 0xFF);
  out += static_cast<char>((n >> 16) & 0xFF);
  out += static_cast<char>((n >> 8) & 0xFF);
  out += static_cast<char>(n & 0xFF);
  out.append(body);
}

void SetFrameHeader(std::string& framed) {
  const auto n = static_cast<uint32_t>(framed.size() - kFrameHeaderSize);
  framed[0] = static_cast<char>((n >> 24) & 0xFF);
  framed[1] = static_cast<char>((n >> 16) & 0xFF);
  framed[2] = static_cast<char>((n >> 8) & 0xFF);
  framed[3] = static_cast<char>(n & 0xFF);
}

std::string EncodeFrame(std::string_view body) {
  std::string out;
  out.reserve(kFrameHeaderSize + body.size());
  AppendFrame(out, body);
  return out;
}

void FrameDecoder::Feed(std::string_view bytes) {
  if (error_) return;
  // Compact once the consumed prefix dominates, so a long-lived stream's buffer stays small.
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

base::Result<std::optional<std::string>> FrameDecoder::Next() {
  if (error_) return std::unexpected(*error_);
  const size_t available = buffer_.size() - consumed_;
  if (available < kFrameHeaderSize) return std::nullopt;
  const auto* p = reinterpret_cast<const uint8_t*>(buffer_.data() + consumed_);
  const uint32_t length =
      (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  if (length == 0) {
    error_ = base::Error::Of("frame: empty frame body");
    return std::unexpected(*error_);
  }
  if (length > max_frame_size_) {
    too_large_ = true;
    buffer_.clear();
    buffer_.shrink_to_fit();
    consumed_ = 0;
    error_ = base::Error::Of("frame: body of " + std::to_string(length) +
                             " bytes exceeds the limit of " + std::to_string(max_frame_size_));
    return std::unexpected(*error_);
  }
  if (available - kFrameHeaderSize < length) return std::nullopt;
  std::string body = buffer_.substr(consumed_ + kFrameHeaderSize, length);
  consumed_ += kFrameHeaderSize + length;
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
    // A large frame's buffer is not kept for the life of the connection.
    if (buffer_.capacity() > (64u << 10)) buffer_.shrink_to_fit();
  }
  return body;
}

}  // namespace picket::net
