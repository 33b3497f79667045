// net/uv_error.h — the one place where libuv's negative error codes become a base::Error.
//
// Pure; any thread.
#pragma once

#include <uv.h>

#include <string>
#include <string_view>

#include "base/error.h"

namespace picket::net {

// "uv_listen: address already in use".
inline base::Error UvError(std::string_view what, int code) {
  return base::Error::Of(std::string(what) + ": " + uv_strerror(code));
}

}  // namespace picket::net
