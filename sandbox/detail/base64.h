// Base64 (RFC 4648, standard alphabet, padded) for files crossing the sandbox boundary and the
// SandboxFusion API. Thread safety: pure functions. Failure: Decode names the first bad offset.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace k2::sandbox {

std::string Base64Encode(std::string_view bytes);
// Accepts padded input; whitespace is not allowed.
Expected<std::string> Base64Decode(std::string_view text);

}  // namespace k2::sandbox
