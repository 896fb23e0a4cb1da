// JSON parsing under limits (depth, size, number range) with located errors, and atomic file writes.
#include "core/json.h"
#include "core/json_limits.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace k2 {

namespace {

// Line and column (1-based) of byte offset `pos` in `text`.
std::pair<size_t, size_t> LineCol(std::string_view text, size_t pos) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

// RFC 6901 escaping of one reference token.
std::string PointerToken(std::string_view t) {
  std::string out;
  for (char c : t) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

// Long pointers (a 100k-level document) are cut in the middle of the message, not in the output.
std::string ShortPointer(std::string p) {
  constexpr size_t kMax = 120;
  if (p.size() > kMax) p = p.substr(0, kMax - 3) + "...";
  return p.empty() ? "/" : p;
}

// nlohmann's DOM builder behind a depth counter and a JSON-pointer tracker. nlohmann's parser itself is
// iterative; returning false from a callback stops it at once, so a too-deep document never gets
// deeper than max_depth in memory, and the partial value is torn down by nlohmann's iterative destroy.
class LimitedSax {
 public:
  LimitedSax(json& root, size_t max_depth) : dom_(root, /*allow_exceptions=*/false), max_depth_(max_depth) {}

  bool null() { return Scalar(dom_.null()); }
  bool boolean(bool v) { return Scalar(dom_.boolean(v)); }
  bool number_integer(json::number_integer_t v) { return Scalar(dom_.number_integer(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return Scalar(dom_.number_unsigned(v)); }
  bool number_float(json::number_float_t v, const json::string_t& s) { return Scalar(dom_.number_float(v, s)); }
  bool string(json::string_t& v) { return Scalar(dom_.string(v)); }
  bool binary(json::binary_t& v) { return Scalar(dom_.binary(v)); }
  bool start_object(std::size_t n) { return Open(false) && dom_.start_object(n); }
  bool start_array(std::size_t n) { return Open(true) && dom_.start_array(n); }
  bool end_object() { return Close() && dom_.end_object(); }
  bool end_array() { return Close() && dom_.end_array(); }
  bool key(json::string_t& k) {
    frames_.back().key = k;
    return dom_.key(k);
  }
  template <class Exception>
  bool parse_error(std::size_t pos, const std::string& /*token*/, const Exception& ex) {
    error_pos_ = pos;
    std::string what = ex.what();
    if (ex.id == 406) {  // out_of_range.406: number overflow (1e999, -1e400)
      auto q = what.find('\'');
      std::string num = q == std::string::npos ? "" : what.substr(q + 1, what.rfind('\'') - q - 1);
      error_ = "number " + num + " is outside the double range";
    } else {
      // "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error while parsing
      // value - invalid literal; last read: 'x'": keep the part after the location.
      auto p = what.find(": ");
      error_ = p == std::string::npos ? what : what.substr(p + 2);
    }
    if (ex.id == 406) error_ += " (at " + ShortPointer(Pointer()) + ")";
    return false;
  }

  const std::string& error() const { return error_; }
  size_t error_pos() const { return error_pos_; }
  bool too_deep() const { return too_deep_; }
  std::string Pointer() const {
    std::string p;
    for (const auto& f : frames_) p += "/" + (f.array ? std::to_string(f.index) : PointerToken(f.key));
    return p;
  }

 private:
  struct Frame {
    bool array;
    size_t index = 0;
    std::string key;
  };
  bool Scalar(bool ok) {
    Advance();
    return ok;
  }
  void Advance() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }
  bool Open(bool array) {
    if (frames_.size() >= max_depth_) {
      too_deep_ = true;
      error_ = "nesting deeper than " + std::to_string(max_depth_) + " levels (at " + ShortPointer(Pointer()) + ")";
      return false;
    }
    frames_.push_back({array});
    return true;
  }
  bool Close() {
    frames_.pop_back();
    Advance();
    return true;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  size_t max_depth_;
  std::vector<Frame> frames_;
  std::string error_;
  size_t error_pos_ = 0;
  bool too_deep_ = false;
};

// Byte offset of the bracket that opens level max_depth + 1 (the SAX callbacks carry no position).
size_t DepthErrorOffset(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return text.size();
}

std::string Located(std::string_view source, std::string_view text, size_t offset, const std::string& what) {
  auto [line, col] = LineCol(text, offset);
  return std::string(source) + ":" + std::to_string(line) + ":" + std::to_string(col) + ": invalid JSON: " + what;
}

}  // namespace

Expected<json> ParseJson(std::string_view text, std::string_view source, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes)
    return InvalidArgument(std::string(source) + ": invalid JSON: document of " + std::to_string(text.size()) +
                           " bytes is over the limit of " + std::to_string(limits.max_bytes) + " bytes");
  json out;
  LimitedSax sax(out, limits.max_depth);
  bool ok = false;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json, /*strict=*/true);
  } catch (const std::exception& e) {  // allocation failures; the SAX path itself reports through sax
    return InvalidArgument(std::string(source) + ": invalid JSON: " + e.what());
  }
  if (ok) return out;
  if (sax.too_deep()) return InvalidArgument(Located(source, text, DepthErrorOffset(text, limits.max_depth), sax.error()));
  // error_pos is the count of bytes read, so the offending byte is the one before.
  return InvalidArgument(Located(source, text, sax.error_pos() > 0 ? sax.error_pos() - 1 : 0, sax.error()));
}

Status CheckJsonDepth(const json& j, size_t max_depth, std::string_view what) {
  // Explicit stack of (value, depth, pointer token); the pointer is rebuilt only on failure.
  struct Item {
    const json* v;
    size_t depth;
    size_t parent;  // index into `trail` of the parent item, SIZE_MAX for the root
    std::string token;
  };
  std::vector<Item> trail;
  std::vector<size_t> pending;
  trail.push_back({&j, j.is_structured() ? 1u : 0u, SIZE_MAX, ""});
  pending.push_back(0);
  while (!pending.empty()) {
    size_t idx = pending.back();
    pending.pop_back();
    const json* v = trail[idx].v;
    size_t depth = trail[idx].depth;
    if (depth > max_depth) {
      std::vector<std::string> tokens;
      for (size_t k = idx; trail[k].parent != SIZE_MAX; k = trail[k].parent) tokens.push_back(trail[k].token);
      std::string p;
      for (auto it = tokens.rbegin(); it != tokens.rend(); ++it) p += "/" + PointerToken(*it);
      return InvalidArgument(std::string(what) + ": nesting deeper than " + std::to_string(max_depth) + " levels (at " +
                             ShortPointer(p) + ")");
    }
    if (v->is_object()) {
      for (auto it = v->begin(); it != v->end(); ++it) {
        if (!it->is_structured()) continue;
        trail.push_back({&*it, depth + 1, idx, it.key()});
        pending.push_back(trail.size() - 1);
      }
    } else if (v->is_array()) {
      for (size_t i = 0; i < v->size(); ++i) {
        if (!(*v)[i].is_structured()) continue;
        trail.push_back({&(*v)[i], depth + 1, idx, std::to_string(i)});
        pending.push_back(trail.size() - 1);
      }
    }
  }
  return Status::Ok();
}

Expected<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError(path + ": read failed");
  return ss.str();
}

Expected<json> ReadJsonFile(const std::string& path, const JsonLimits& limits) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > limits.max_bytes)
    return InvalidArgument(path + ": invalid JSON: file of " + std::to_string(size) + " bytes is over the limit of " +
                           std::to_string(limits.max_bytes) + " bytes");
  K2_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseJson(text, path, limits);
}

Expected<json> ParseJson(std::string_view text, std::string_view source) { return ParseJson(text, source, JsonLimits{}); }
Expected<json> ReadJsonFile(const std::string& path) { return ReadJsonFile(path, JsonLimits{}); }

Expected<std::vector<json>> ReadJsonLines(const std::string& path) {
  const JsonLimits limits;
  K2_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<json> out;
  size_t line_no = 0, start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    std::string_view line(text.data() + start, end - start);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
      auto j = ParseJson(line, path + ":" + std::to_string(line_no), limits);
      if (!j.ok()) return j.status();
      out.push_back(std::move(*j));
    }
    start = end + 1;
  }
  return out;
}

std::string CanonicalJson(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Status WriteFileAtomic(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(tmp + ": cannot create: " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return IoError(tmp + ": write failed: " + err);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return IoError(tmp + ": fsync/close failed: " + err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return IoError(path + ": rename failed: " + err);
  }
  return Status::Ok();
}

const char* JsonTypeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return "number";
    case json::value_t::string: return "string";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    case json::value_t::binary: return "binary";
    case json::value_t::discarded: return "discarded";
  }
  return "unknown";
}

}  // namespace k2
