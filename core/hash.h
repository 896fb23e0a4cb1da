// SHA-256 (OpenSSL's EVP) for content hashes: database states, artifacts, dedupe keys.
#pragma once

#include <string>
#include <string_view>

namespace k2 {

std::string Sha256Hex(std::string_view data);

}  // namespace k2
