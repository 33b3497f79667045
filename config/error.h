// config/error.h — config/'s name for the one error value (base/error.h).
//
// config::Error is base::Error: the same type, rendered the same way
// (`file:line: Kind ns/name: field.path: reason`).
#pragma once

#include "base/error.h"

namespace picket::config {

using Error = base::Error;
using Errors = base::Errors;

}  // namespace picket::config
