// Hugging Face checkpoint directories: sharded safetensors through model.safetensors.index.json,
// streamed tensor by tensor into a Model (mmap of each tensor's range), FP8 block dequantization, and
// sharded saving with an index.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "engine/engine.h"

namespace k2::engine {
namespace fs = std::filesystem;

namespace {

// An open file descriptor, closed on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

Status PreadAll(int fd, char* dst, uint64_t len, uint64_t off, const std::string& path) {
  while (len > 0) {
    ssize_t n = ::pread(fd, dst, len, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return IoError(path + ": read failed at offset " + std::to_string(off) + ": " +
                               (n == 0 ? std::string("unexpected end of file") : std::string(std::strerror(errno))));
    dst += n, len -= static_cast<uint64_t>(n), off += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// The bytes [off, off+len) of a file: an mmap of the pages that hold them (dropped from memory on
// destruction, so a streamed load holds one tensor's pages at a time), or a pread copy where mmap fails.
class FileRange {
 public:
  FileRange() = default;
  FileRange(const FileRange&) = delete;
  FileRange& operator=(const FileRange&) = delete;
  ~FileRange() {
    if (map_ != nullptr) {
      ::madvise(map_, map_len_, MADV_DONTNEED);
      ::munmap(map_, map_len_);
    }
  }
  Status Open(int fd, uint64_t off, uint64_t len, const std::string& path) {
    if (len == 0) return Status::Ok();
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t start = off / page * page;
    const uint64_t map_len = len + (off - start);
    void* p = ::mmap(nullptr, map_len, PROT_READ, MAP_PRIVATE, fd, static_cast<off_t>(start));
    if (p != MAP_FAILED) {
      ::madvise(p, map_len, MADV_SEQUENTIAL);
      map_ = p;
      map_len_ = map_len;
      data_ = static_cast<const char*>(p) + (off - start);
      return Status::Ok();
    }
    copy_.resize(len);
    K2_RETURN_IF_ERROR(PreadAll(fd, copy_.data(), len, off, path));
    data_ = copy_.data();
    return Status::Ok();
  }
  const char* data() const { return data_; }

 private:
  void* map_ = nullptr;
  uint64_t map_len_ = 0;
  std::string copy_;
  const char* data_ = nullptr;
};

float Bf16ToFloat(uint16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v) << 16); }

float F16ToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0) {
    float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
}

// Element i of raw little-endian data of `dtype` as double (dtype already validated).
inline double Element(const char* p, const std::string& dtype, int64_t i) {
  switch (dtype[0]) {
    case 'F':
      if (dtype == "F32") {
        float v;
        std::memcpy(&v, p + 4 * i, 4);
        return v;
      } else if (dtype == "F64") {
        double v;
        std::memcpy(&v, p + 8 * i, 8);
        return v;
      } else if (dtype == "F16") {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, 2);
        return F16ToFloat(v);
      } else {
        return Fp8E4m3Table()[static_cast<uint8_t>(p[i])];
      }
    case 'B': {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      return Bf16ToFloat(v);
    }
    default:
      if (dtype == "I64") {
        int64_t v;
        std::memcpy(&v, p + 8 * i, 8);
        return static_cast<double>(v);
      } else {
        int32_t v;
        std::memcpy(&v, p + 4 * i, 4);
        return v;
      }
  }
}

template <class T>
void Convert(const char* src, const std::string& dtype, int64_t n, T* dst) {
  if (dtype == "F32") {
    for (int64_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, src + 4 * i, 4);
      dst[i] = static_cast<T>(v);
    }
  } else if (dtype == "BF16") {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, src + 2 * i, 2);
      dst[i] = static_cast<T>(Bf16ToFloat(v));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(Element(src, dtype, i));
  }
}

std::string ShowShape(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

// model.layers.N.* with N >= layers: the multi-token-prediction layer(s) released checkpoints carry.
bool IsExtraLayer(const std::string& name, int64_t layers) {
  static const std::string kPre = "model.layers.";
  if (name.compare(0, kPre.size(), kPre) != 0) return false;
  size_t i = kPre.size();
  int64_t n = 0;
  size_t digits = 0;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9' && digits < 9) n = n * 10 + (name[i++] - '0'), ++digits;
  return digits > 0 && i < name.size() && name[i] == '.' && n >= layers;
}

struct Source {
  std::string file;   // path
  StEntry entry;
  const StHeader* header = nullptr;
};

// Every file's header, once.
struct Headers {
  std::map<std::string, StHeader> by_file;
  Expected<const StHeader*> Get(const std::string& path) {
    auto it = by_file.find(path);
    if (it != by_file.end()) return &it->second;
    K2_ASSIGN_OR_RETURN(StHeader h, ReadSafetensorsHeader(path));
    return &by_file.emplace(path, std::move(h)).first->second;
  }
};

// The streaming load shared by single files and directories. `index` maps tensor names to files
// (nullptr: every tensor of `files`). Validates everything from the headers before writing a weight.
template <class T>
Status StreamLoad(const std::vector<std::string>& files, const std::map<std::string, std::string>* index,
                  const std::optional<Fp8Quantization>& quant, bool skip_extra_layers, const std::string& what,
                  Model<T>* model, HfLoadStats* stats) {
  Headers headers;
  std::map<std::string, Source> where;  // every tensor name -> its file and range
  for (const auto& f : files) {
    K2_ASSIGN_OR_RETURN(const StHeader* h, headers.Get(f));
    for (const auto& [name, e] : h->tensors) {
      if (index != nullptr) {
        auto it = index->find(name);
        if (it == index->end() || it->second != f) continue;  // the index names another file (or none)
      }
      where[name] = Source{f, e, h};
    }
  }
  if (index != nullptr) {
    for (const auto& [name, file] : *index)
      if (!where.count(name))
        return Corruption(what + ": model.safetensors.index.json: tensor \"" + name + "\" is not in " + file);
  }
  HfLoadStats st;
  st.shards = static_cast<int64_t>(files.size());
  const int64_t layers = model->config().num_hidden_layers;
  std::set<std::string> used;
  struct Job {
    Param<T>* p;
    const Source* src;
    const Source* scale;  // FP8 only
  };
  std::vector<Job> jobs;
  for (auto& p : model->params()) {
    auto it = where.find(p.name);
    if (it == where.end()) return InvalidArgument(what + ": missing tensor \"" + p.name + "\"");
    const Source& s = it->second;
    if (s.entry.shape != p.shape)
      return InvalidArgument(what + ": tensor \"" + p.name + "\": shape " + ShowShape(s.entry.shape) +
                             ", the config needs " + ShowShape(p.shape));
    used.insert(p.name);
    Job job{&p, &s, nullptr};
    if (s.entry.dtype == "F8_E4M3") {
      const std::string sn = p.name + "_scale_inv";
      if (!quant)
        return InvalidArgument(what + ": tensor \"" + p.name +
                               "\" is F8_E4M3 but config.json has no quantization_config (fp8, weight_block_size)");
      auto sc = where.find(sn);
      if (sc == where.end()) return InvalidArgument(what + ": FP8 tensor \"" + p.name + "\" has no \"" + sn + "\"");
      if (p.shape.size() != 2)
        return InvalidArgument(what + ": FP8 tensor \"" + p.name + "\": expected a 2-D weight, got " + ShowShape(p.shape));
      const std::vector<int64_t> want = {(p.shape[0] + quant->block_rows - 1) / quant->block_rows,
                                         (p.shape[1] + quant->block_cols - 1) / quant->block_cols};
      if (sc->second.entry.shape != want)
        return InvalidArgument(what + ": tensor \"" + sn + "\": shape " + ShowShape(sc->second.entry.shape) +
                               ", blocks of " + std::to_string(quant->block_rows) + "x" +
                               std::to_string(quant->block_cols) + " over " + ShowShape(p.shape) + " need " +
                               ShowShape(want));
      const std::string& sd = sc->second.entry.dtype;
      if (sd != "F32" && sd != "BF16" && sd != "F64" && sd != "F16")
        return InvalidArgument(what + ": tensor \"" + sn + "\": expected a float dtype, got " + sd);
      used.insert(sn);
      job.scale = &sc->second;
    } else if (s.entry.dtype == "I64" || s.entry.dtype == "I32") {
      return InvalidArgument(what + ": tensor \"" + p.name + "\": expected a float dtype, got " + s.entry.dtype);
    }
    jobs.push_back(job);
  }
  for (const auto& [name, s] : where) {
    if (used.count(name)) continue;
    if (skip_extra_layers && IsExtraLayer(name, layers)) {
      ++st.skipped;
      continue;
    }
    return InvalidArgument(what + ": unexpected tensor \"" + name + "\" (not in this model config)");
  }
  // Load file by file, each in data order, one tensor resident at a time.
  std::stable_sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) {
    return a.src->file != b.src->file ? a.src->file < b.src->file : a.src->entry.begin < b.src->entry.begin;
  });
  std::string open_path;
  std::unique_ptr<Fd> fd;
  std::map<std::string, std::unique_ptr<Fd>> scale_fds;
  for (const Job& j : jobs) {
    if (j.src->file != open_path) {
      fd = std::make_unique<Fd>(j.src->file);
      if (fd->fd < 0) return IoError(j.src->file + ": cannot open: " + std::strerror(errno));
      open_path = j.src->file;
    }
    const StEntry& e = j.src->entry;
    FileRange r;
    K2_RETURN_IF_ERROR(r.Open(fd->fd, j.src->header->data_start + e.begin, e.end - e.begin, j.src->file));
    T* dst = j.p->w.data();
    const int64_t n = j.p->numel();
    if (j.scale == nullptr) {
      Convert(r.data(), e.dtype, n, dst);
    } else {
      const StEntry& se = j.scale->entry;
      auto& sfd = scale_fds[j.scale->file];
      if (!sfd) {
        sfd = std::make_unique<Fd>(j.scale->file);
        if (sfd->fd < 0) return IoError(j.scale->file + ": cannot open: " + std::strerror(errno));
      }
      std::string sbytes(se.end - se.begin, '\0');
      K2_RETURN_IF_ERROR(PreadAll(sfd->fd, sbytes.data(), sbytes.size(), j.scale->header->data_start + se.begin,
                                  j.scale->file));
      const int64_t rows = j.p->shape[0], cols = j.p->shape[1], scols = se.shape[1];
      std::vector<float> scale(static_cast<size_t>(se.shape[0] * scols));
      for (size_t k = 0; k < scale.size(); ++k)
        scale[k] = static_cast<float>(Element(sbytes.data(), se.dtype, static_cast<int64_t>(k)));
      const auto& table = Fp8E4m3Table();
      const auto* q = reinterpret_cast<const uint8_t*>(r.data());
      for (int64_t i = 0; i < rows; ++i) {
        const float* srow = scale.data() + (i / quant->block_rows) * scols;
        for (int64_t c = 0; c < cols; ++c)
          dst[i * cols + c] = static_cast<T>(table[q[i * cols + c]] * srow[c / quant->block_cols]);
      }
      ++st.fp8_tensors;
    }
    ++st.tensors;
    ++st.dtype_count[e.dtype];
  }
  if (stats) *stats = st;
  return Status::Ok();
}

// (files in order, name -> file) of a directory.
Status ListShards(const std::string& dir, std::vector<std::string>* files, std::map<std::string, std::string>* index,
                  bool* indexed) {
  const std::string ip = dir + "/model.safetensors.index.json";
  if (fs::exists(ip)) {
    K2_ASSIGN_OR_RETURN(json j, ReadJsonFile(ip));
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      return Corruption(ip + ": expected {\"weight_map\": {tensor: file}}");
    std::set<std::string> fset;
    for (auto& [name, f] : j["weight_map"].items()) {
      if (!f.is_string()) return Corruption(ip + ": weight_map." + name + ": expected a file name");
      const std::string fn = f.get<std::string>();
      if (fn.empty() || fn.find('/') != std::string::npos || fn == "." || fn == "..")
        return Corruption(ip + ": weight_map." + name + ": expected a file name in the directory, got \"" + fn + "\"");
      (*index)[name] = dir + "/" + fn;
      fset.insert(dir + "/" + fn);
    }
    files->assign(fset.begin(), fset.end());
    *indexed = true;
    return Status::Ok();
  }
  const std::string single = dir + "/model.safetensors";
  if (!fs::exists(single))
    return NotFound(dir + ": no model.safetensors.index.json and no model.safetensors (expected a Hugging Face checkpoint)");
  files->push_back(single);
  *indexed = false;
  return Status::Ok();
}

}  // namespace

Expected<StHeader> ReadSafetensorsHeader(const std::string& path) {
  Fd fd(path);
  if (fd.fd < 0) return IoError(path + ": cannot open: " + std::strerror(errno));
  struct stat sb;
  if (::fstat(fd.fd, &sb) != 0) return IoError(path + ": cannot stat: " + std::strerror(errno));
  const uint64_t size = static_cast<uint64_t>(sb.st_size);
  if (size < 8) return Corruption(path + ": safetensors: file shorter than the 8-byte header length");
  uint64_t hlen = 0;
  K2_RETURN_IF_ERROR(PreadAll(fd.fd, reinterpret_cast<char*>(&hlen), 8, 0, path));
  if (hlen > size - 8)
    return Corruption(path + ": safetensors: header length " + std::to_string(hlen) + " exceeds the file size " +
                      std::to_string(size));
  if (hlen > (uint64_t{100} << 20))
    return Corruption(path + ": safetensors: header length " + std::to_string(hlen) + " exceeds the format's 100 MB");
  std::string h(hlen, '\0');
  K2_RETURN_IF_ERROR(PreadAll(fd.fd, h.data(), hlen, 8, path));
  K2_ASSIGN_OR_RETURN(StHeader out, ParseSafetensorsHeader(h, size - 8 - hlen, path));
  out.data_start = 8 + hlen;
  return out;
}

Expected<HfCheckpoint> ReadHfCheckpointConfig(const std::string& dir) {
  const std::string path = dir + "/config.json";
  HfCheckpoint c;
  K2_ASSIGN_OR_RETURN(c.raw, ReadJsonFile(path));
  K2_ASSIGN_OR_RETURN(c.config, ModelConfigFromJson(c.raw, path, &c.defaults_taken));
  K2_ASSIGN_OR_RETURN(c.quantization, ReadQuantizationConfig(c.raw, path));
  return c;
}

template <class T>
Status LoadHfWeights(const std::string& dir, const std::optional<Fp8Quantization>& quant, Model<T>* model,
                     HfLoadStats* stats) {
  std::vector<std::string> files;
  std::map<std::string, std::string> index;
  bool indexed = false;
  K2_RETURN_IF_ERROR(ListShards(dir, &files, &index, &indexed));
  return StreamLoad(files, indexed ? &index : nullptr, quant, /*skip_extra_layers=*/true, dir, model, stats);
}

template <class T>
Status LoadSafetensorsFile(const std::string& path, Model<T>* model) {
  if (fs::is_directory(path)) {
    K2_ASSIGN_OR_RETURN(HfCheckpoint c, ReadHfCheckpointConfig(path));
    return LoadHfWeights(path, c.quantization, model);
  }
  return StreamLoad<T>({path}, nullptr, std::nullopt, /*skip_extra_layers=*/false, path, model, nullptr);
}

template <class T>
Status SaveHfCheckpoint(const Model<T>& model, const std::string& dir, const std::string& dtype,
                        int64_t max_shard_bytes) {
  if (dtype != "F32" && dtype != "BF16") return InvalidArgument("checkpoint dtype: expected F32 or BF16, got " + dtype);
  if (max_shard_bytes < 1) return InvalidArgument("max_shard_bytes: expected >= 1");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError(dir + ": cannot create directory: " + ec.message());
  const auto& params = model.params();
  auto dt_of = [&](const Param<T>& p) { return p.trainable ? dtype : std::string("F32"); };
  // Shards: consecutive parameters (model order) up to max_shard_bytes each.
  std::vector<std::vector<size_t>> shards;
  int64_t cur = 0, total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t b = params[i].numel() * StDtypeSize(dt_of(params[i]));
    if (shards.empty() || (cur + b > max_shard_bytes && cur > 0)) shards.emplace_back(), cur = 0;
    shards.back().push_back(i);
    cur += b, total += b;
  }
  const size_t n = shards.size();
  auto name_of = [&](size_t k) {
    if (n == 1) return std::string("model.safetensors");
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k + 1, n);
    return std::string(buf);
  };
  json weight_map = json::object();
  std::vector<double> tmp;
  for (size_t k = 0; k < n; ++k) {
    StFile f;
    f.metadata["format"] = "pt";
    for (size_t i : shards[k]) {
      const Param<T>& p = params[i];
      tmp.assign(p.w.begin(), p.w.end());
      f.tensors.emplace(p.name, StFromFloats(p.shape, tmp.data(), p.numel(), dt_of(p)));
      weight_map[p.name] = name_of(k);
    }
    K2_RETURN_IF_ERROR(WriteSafetensors(dir + "/" + name_of(k), f));
  }
  // A stale index or shard set from an earlier save would shadow or mix with this one.
  if (n == 1) fs::remove(dir + "/model.safetensors.index.json", ec);
  if (n > 1) {
    fs::remove(dir + "/model.safetensors", ec);
    json idx = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    K2_RETURN_IF_ERROR(WriteFileAtomic(dir + "/model.safetensors.index.json", idx.dump(2) + "\n"));
  }
  json cfg = ModelConfigToJson(model.config());
  cfg["torch_dtype"] = dtype == "BF16" ? "bfloat16" : "float32";
  return WriteFileAtomic(dir + "/config.json", cfg.dump(2) + "\n");
}

std::string TensorClassOf(const std::string& name, int64_t layers) {
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  auto ends = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (IsExtraLayer(name, layers)) return "mtp";
  if (ends("_scale_inv")) return "fp8_scales";
  if (name == "model.embed_tokens.weight") return "embedding";
  if (name == "lm_head.weight") return "lm_head";
  if (has("layernorm") || name == "model.norm.weight") return "norm";
  if (has(".self_attn.")) return "attention";
  if (ends("mlp.gate.e_score_correction_bias")) return "router_bias";
  if (ends("mlp.gate.weight")) return "router";
  if (has(".mlp.shared_experts.")) return "shared_experts";
  if (has(".mlp.experts.")) return "routed_experts";
  if (has(".mlp.")) return "dense_mlp";
  return "other";
}

Expected<HfCheckpointSummary> SummarizeHfCheckpoint(const std::string& dir, int64_t layers) {
  std::vector<std::string> files;
  std::map<std::string, std::string> index;
  bool indexed = false;
  K2_RETURN_IF_ERROR(ListShards(dir, &files, &index, &indexed));
  HfCheckpointSummary out;
  out.shards = static_cast<int64_t>(files.size());
  for (const auto& f : files) {
    K2_ASSIGN_OR_RETURN(StHeader h, ReadSafetensorsHeader(f));
    for (const auto& [name, e] : h.tensors) {
      if (indexed) {
        auto it = index.find(name);
        if (it == index.end() || it->second != f) continue;
      }
      TensorClassStats& c = out.classes[TensorClassOf(name, layers)];
      const int64_t bytes = static_cast<int64_t>(e.end - e.begin);
      ++c.tensors;
      c.elements += bytes / StDtypeSize(e.dtype);
      c.bytes += bytes;
      ++c.dtypes[e.dtype];
      out.bytes += bytes;
    }
  }
  return out;
}

template Status LoadHfWeights(const std::string&, const std::optional<Fp8Quantization>&, Model<float>*, HfLoadStats*);
template Status LoadHfWeights(const std::string&, const std::optional<Fp8Quantization>&, Model<double>*, HfLoadStats*);
template Status LoadSafetensorsFile(const std::string&, Model<float>*);
template Status LoadSafetensorsFile(const std::string&, Model<double>*);
template Status SaveHfCheckpoint(const Model<float>&, const std::string&, const std::string&, int64_t);
template Status SaveHfCheckpoint(const Model<double>&, const std::string&, const std::string&, int64_t);

}  // namespace k2::engine
