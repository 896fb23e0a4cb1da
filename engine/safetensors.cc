// safetensors read/write (F32, F64, BF16, F16, F8_E4M3, I64, I32) and the model's HF-named weight files.
// Every malformed header yields a Corruption/InvalidArgument naming the file and tensor; shape products
// and byte counts are computed with overflow checks before any arithmetic uses them.
#include <array>
#include <bit>
#include <climits>
#include <limits>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "engine/engine.h"

namespace k2::engine {
namespace {

int64_t DtypeSize(const std::string& d) {
  if (d == "F32" || d == "I32") return 4;
  if (d == "F64" || d == "I64") return 8;
  if (d == "BF16" || d == "F16") return 2;
  if (d == "F8_E4M3") return 1;
  return 0;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0) {
    float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t FloatToBf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace

int64_t StDtypeSize(const std::string& dtype) { return DtypeSize(dtype); }

float Fp8E4m3ToFloat(uint8_t b) {
  // OCP FP8 E4M3 ("e4m3fn", torch.float8_e4m3fn): bias 7, no infinities, S.1111.111 is NaN.
  const bool neg = b & 0x80;
  const int exp = (b >> 3) & 0xf, man = b & 7;
  float v;
  if (exp == 15 && man == 7) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (exp == 0) {
    v = std::ldexp(static_cast<float>(man), -9);  // subnormal: man/8 * 2^-6
  } else {
    v = std::ldexp(1.0f + static_cast<float>(man) / 8.0f, exp - 7);
  }
  return neg ? -v : v;
}

const std::array<float, 256>& Fp8E4m3Table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int b = 0; b < 256; ++b) t[b] = Fp8E4m3ToFloat(static_cast<uint8_t>(b));
    return t;
  }();
  return table;
}

Expected<StHeader> ParseSafetensorsHeader(std::string_view header, uint64_t data_bytes, const std::string& path) {
  K2_ASSIGN_OR_RETURN(json h, ParseJson(header, path + " (safetensors header)"));
  if (!h.is_object()) return Corruption(path + ": safetensors header: expected a JSON object");
  StHeader out;
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) return Corruption(path + ": __metadata__: expected an object of strings");
      for (auto& [k, s] : v.items()) {
        if (!s.is_string()) return Corruption(path + ": __metadata__." + k + ": expected a string");
        out.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor \"" + name + "\": ";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      return Corruption(where + "expected {dtype, shape, data_offsets}");
    if (!v["dtype"].is_string()) return Corruption(where + "dtype: expected a string");
    StEntry t;
    t.dtype = v["dtype"].get<std::string>();
    const int64_t es = DtypeSize(t.dtype);
    if (es == 0)
      return InvalidArgument(where + "dtype \"" + t.dtype + "\" not supported (F32 F64 BF16 F16 F8_E4M3 I64 I32)");
    if (!v["shape"].is_array()) return Corruption(where + "shape: expected an array");
    // numel and bytes in checked unsigned arithmetic: a shape whose product (or product x dtype size)
    // does not fit in 64 bits, or exceeds the file, is rejected before anything is sized from it.
    uint64_t numel = 1;
    for (auto& d : v["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        return Corruption(where + "shape: expected non-negative integers below 2^63, got " + d.dump());
      const uint64_t dim = d.get<uint64_t>();
      if (__builtin_mul_overflow(numel, dim, &numel))
        return Corruption(where + "shape " + v["shape"].dump() + ": the element count overflows 64 bits");
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(es), &bytes) || bytes > static_cast<uint64_t>(INT64_MAX))
      return Corruption(where + "shape " + v["shape"].dump() + " x " + std::to_string(es) +
                        " bytes per element overflows 64 bits");
    auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      return Corruption(where + "data_offsets: expected [begin, end]");
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > data_bytes)
      return Corruption(where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                        "] outside the data section of " + std::to_string(data_bytes) + " bytes");
    if (e - b != bytes)
      return Corruption(where + "data_offsets span " + std::to_string(e - b) + " bytes, shape and dtype need " +
                        std::to_string(bytes));
    t.begin = b;
    t.end = e;
    out.tensors.emplace(name, std::move(t));
  }
  return out;
}

int64_t StTensor::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

Expected<StFile> ReadSafetensors(const std::string& path) {
  K2_ASSIGN_OR_RETURN(std::string data, ReadFile(path));
  if (data.size() < 8) return Corruption(path + ": safetensors: file shorter than the 8-byte header length");
  uint64_t hlen = 0;
  std::memcpy(&hlen, data.data(), 8);  // little-endian on every platform we build for
  if (hlen > data.size() - 8)
    return Corruption(path + ": safetensors: header length " + std::to_string(hlen) + " exceeds the file size " +
                      std::to_string(data.size()));
  const uint64_t base = 8 + hlen, avail = data.size() - base;
  K2_ASSIGN_OR_RETURN(StHeader h, ParseSafetensorsHeader(std::string_view(data).substr(8, hlen), avail, path));
  StFile f;
  f.metadata = std::move(h.metadata);
  for (auto& [name, e] : h.tensors) {
    StTensor t;
    t.dtype = e.dtype;
    t.shape = e.shape;
    t.bytes = data.substr(base + e.begin, e.end - e.begin);
    f.tensors.emplace(name, std::move(t));
  }
  return f;
}

Status WriteSafetensors(const std::string& path, const StFile& f) {
  json h = json::object();
  uint64_t off = 0;
  for (auto& [name, t] : f.tensors) {  // std::map: sorted names, as the reference writer does
    h[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  if (!f.metadata.empty()) h["__metadata__"] = f.metadata;
  std::string hs = h.dump();
  while ((8 + hs.size()) % 8 != 0) hs.push_back(' ');  // align the data section (the format allows padding)
  std::string out(8, '\0');
  uint64_t hl = hs.size();
  std::memcpy(out.data(), &hl, 8);
  out += hs;
  out.reserve(out.size() + off);
  for (auto& [name, t] : f.tensors) out += t.bytes;
  return WriteFileAtomic(path, out);
}

Expected<std::vector<double>> StToDouble(const StTensor& t, const std::string& name) {
  const int64_t es = DtypeSize(t.dtype);
  if (es == 0) return InvalidArgument("tensor \"" + name + "\": dtype " + t.dtype + " not supported");
  if (t.bytes.size() % static_cast<size_t>(es) != 0 ||
      static_cast<int64_t>(t.bytes.size() / static_cast<size_t>(es)) != t.numel())
    return Corruption("tensor \"" + name + "\": byte size does not match its shape");
  const int64_t n = t.numel();
  std::vector<double> out(static_cast<size_t>(n));
  const char* p = t.bytes.data();
  for (int64_t i = 0; i < n; ++i) {
    if (t.dtype == "F32") {
      float v;
      std::memcpy(&v, p + 4 * i, 4);
      out[i] = v;
    } else if (t.dtype == "F64") {
      std::memcpy(&out[i], p + 8 * i, 8);
    } else if (t.dtype == "BF16") {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      out[i] = std::bit_cast<float>(static_cast<uint32_t>(v) << 16);
    } else if (t.dtype == "F16") {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      out[i] = HalfToFloat(v);
    } else if (t.dtype == "I64") {
      int64_t v;
      std::memcpy(&v, p + 8 * i, 8);
      out[i] = static_cast<double>(v);
    } else if (t.dtype == "I32") {
      int32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      out[i] = v;
    } else if (t.dtype == "F8_E4M3") {
      out[i] = Fp8E4m3Table()[static_cast<uint8_t>(p[i])];
    } else {
      return InvalidArgument("tensor \"" + name + "\": dtype " + t.dtype + " not supported");
    }
  }
  return out;
}

StTensor StFromFloats(const std::vector<int64_t>& shape, const double* data, int64_t n, const std::string& dtype) {
  StTensor t;
  t.dtype = dtype;
  t.shape = shape;
  t.bytes.resize(static_cast<size_t>(n * DtypeSize(dtype)));
  char* p = t.bytes.data();
  for (int64_t i = 0; i < n; ++i) {
    if (dtype == "F32") {
      float v = static_cast<float>(data[i]);
      std::memcpy(p + 4 * i, &v, 4);
    } else if (dtype == "F64") {
      std::memcpy(p + 8 * i, &data[i], 8);
    } else if (dtype == "BF16") {
      uint16_t v = FloatToBf16(static_cast<float>(data[i]));
      std::memcpy(p + 2 * i, &v, 2);
    } else if (dtype == "I64") {
      int64_t v = static_cast<int64_t>(data[i]);
      std::memcpy(p + 8 * i, &v, 8);
    } else {
      K2_CHECK(false) << "StFromFloats: unsupported dtype " << dtype;
    }
  }
  return t;
}

template <class T>
Status Model<T>::SaveSafetensors(const std::string& path, const std::string& dtype) const {
  if (dtype != "F32" && dtype != "BF16" && dtype != "F64")
    return InvalidArgument("safetensors dtype: expected F32, BF16 or F64, got " + dtype);
  StFile f;
  f.metadata["format"] = "pt";
  std::vector<double> tmp;
  for (const auto& p : params()) {
    tmp.assign(p.w.begin(), p.w.end());
    // HF keeps the correction bias in fp32 even in bf16 checkpoints.
    const std::string dt = (p.trainable ? dtype : (dtype == "F64" ? "F64" : "F32"));
    f.tensors.emplace(p.name, StFromFloats(p.shape, tmp.data(), p.numel(), dt));
  }
  K2_RETURN_IF_ERROR(WriteSafetensors(path, f));
  std::filesystem::path cfg = std::filesystem::path(path).parent_path() / "config.json";
  return WriteFileAtomic(cfg.string(), ModelConfigToJson(config()).dump(2) + "\n");
}

// engine/safetensors_hf.cc: the streaming loader (a file, or a Hugging Face directory).
template <class T>
Status LoadSafetensorsFile(const std::string& path, Model<T>* model);

template <class T>
Status Model<T>::LoadSafetensors(const std::string& path) {
  return LoadSafetensorsFile(path, this);
}

template Status Model<float>::SaveSafetensors(const std::string&, const std::string&) const;
template Status Model<double>::SaveSafetensors(const std::string&, const std::string&) const;
template Status Model<float>::LoadSafetensors(const std::string&);
template Status Model<double>::LoadSafetensors(const std::string&);

}  // namespace k2::engine
