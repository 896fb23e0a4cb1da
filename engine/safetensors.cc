// safetensors read/write (F32, F64, BF16, F16, I64, I32) and the model's HF-named weight files.
// Every malformed header yields a Corruption/InvalidArgument naming the file and tensor.
#include <bit>
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
  K2_ASSIGN_OR_RETURN(json h, ParseJson(std::string_view(data).substr(8, hlen), path + " (safetensors header)"));
  if (!h.is_object()) return Corruption(path + ": safetensors header: expected a JSON object");
  StFile f;
  const uint64_t base = 8 + hlen, avail = data.size() - base;
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) return Corruption(path + ": __metadata__: expected an object of strings");
      for (auto& [k, s] : v.items()) {
        if (!s.is_string()) return Corruption(path + ": __metadata__." + k + ": expected a string");
        f.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor \"" + name + "\": ";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      return Corruption(where + "expected {dtype, shape, data_offsets}");
    if (!v["dtype"].is_string()) return Corruption(where + "dtype: expected a string");
    StTensor t;
    t.dtype = v["dtype"].get<std::string>();
    const int64_t es = DtypeSize(t.dtype);
    if (es == 0) return InvalidArgument(where + "dtype \"" + t.dtype + "\" not supported (F32 F64 BF16 F16 I64 I32)");
    if (!v["shape"].is_array()) return Corruption(where + "shape: expected an array");
    for (auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) return Corruption(where + "shape: expected non-negative integers");
      t.shape.push_back(d.get<int64_t>());
    }
    auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      return Corruption(where + "data_offsets: expected [begin, end]");
    const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > avail)
      return Corruption(where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                        "] outside the data section of " + std::to_string(avail) + " bytes");
    if (static_cast<int64_t>(e - b) != t.numel() * es)
      return Corruption(where + "data_offsets span " + std::to_string(e - b) + " bytes, shape and dtype need " +
                        std::to_string(t.numel() * es));
    t.bytes = data.substr(base + b, e - b);
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
  const int64_t n = t.numel();
  std::vector<double> out(static_cast<size_t>(n));
  const char* p = t.bytes.data();
  if (static_cast<int64_t>(t.bytes.size()) != n * DtypeSize(t.dtype))
    return Corruption("tensor \"" + name + "\": byte size does not match its shape");
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

template <class T>
Status Model<T>::LoadSafetensors(const std::string& path) {
  K2_ASSIGN_OR_RETURN(StFile f, ReadSafetensors(path));
  for (auto& p : params()) {
    auto it = f.tensors.find(p.name);
    if (it == f.tensors.end()) return InvalidArgument(path + ": missing tensor \"" + p.name + "\"");
    if (it->second.shape != p.shape) {
      auto show = [](const std::vector<int64_t>& s) {
        std::string o = "[";
        for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
        return o + "]";
      };
      return InvalidArgument(path + ": tensor \"" + p.name + "\": shape " + show(it->second.shape) +
                             ", the config needs " + show(p.shape));
    }
  }
  for (auto& [name, t] : f.tensors) {
    bool known = false;
    for (auto& p : params()) known |= (p.name == name);
    if (!known) return InvalidArgument(path + ": unexpected tensor \"" + name + "\" (not in this model config)");
  }
  for (auto& p : params()) {
    K2_ASSIGN_OR_RETURN(std::vector<double> v, StToDouble(f.tensors.at(p.name), p.name));
    for (size_t i = 0; i < v.size(); ++i) p.w[i] = static_cast<T>(v[i]);
  }
  return Status::Ok();
}

template Status Model<float>::SaveSafetensors(const std::string&, const std::string&) const;
template Status Model<double>::SaveSafetensors(const std::string&, const std::string&) const;
template Status Model<float>::LoadSafetensors(const std::string&);
template Status Model<double>::LoadSafetensors(const std::string&);

}  // namespace k2::engine
