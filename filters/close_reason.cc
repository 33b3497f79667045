#include "filters/close_reason.h"

namespace picket::filters {

std::optional<CloseReason> ParseCloseReason(std::string_view name) {
  for (CloseReason reason : kAllCloseReasons) {
    if (CloseReasonName(reason) == name) return reason;
  }
  return std::nullopt;
}

}  // namespace picket::filters
