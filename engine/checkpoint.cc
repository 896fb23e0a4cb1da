// Training checkpoints: weights, optimizer moments, trainer state (step, data position, RNG) in one
// directory, written to DIR.tmp and renamed into place so an interrupted save never clobbers DIR.
#include <filesystem>

#include "engine/engine.h"

namespace k2::engine {
namespace fs = std::filesystem;

Status SaveCheckpoint(const std::string& dir, const Model<float>& model, Optimizer<float>& opt,
                      const TrainerState& st) {
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return IoError(tmp + ": cannot create checkpoint directory: " + ec.message());
  K2_RETURN_IF_ERROR(model.SaveSafetensors(tmp + "/model.safetensors", "F32"));  // also writes config.json
  StFile f;
  f.metadata["format"] = "k2gym-optimizer";
  f.metadata["version"] = "1";
  std::vector<double> buf;
  for (auto& [name, vec] : opt.StateTensors()) {
    buf.assign(vec->begin(), vec->end());
    f.tensors.emplace(name, StFromFloats({static_cast<int64_t>(vec->size())}, buf.data(),
                                         static_cast<int64_t>(vec->size()), "F32"));
  }
  K2_RETURN_IF_ERROR(WriteSafetensors(tmp + "/optimizer.safetensors", f));
  json js = {{"format", "k2gym-trainer-state"}, {"version", 1},       {"step", st.step},
             {"data_position", st.data_position},  {"rng", st.rng}, {"extra", st.extra}};
  K2_RETURN_IF_ERROR(WriteFileAtomic(tmp + "/trainer_state.json", js.dump(2) + "\n"));
  // Swap into place: DIR -> DIR.old, DIR.tmp -> DIR, drop DIR.old.
  const std::string old = dir + ".old";
  fs::remove_all(old, ec);
  if (fs::exists(dir)) {
    fs::rename(dir, old, ec);
    if (ec) return IoError(dir + ": cannot move the previous checkpoint aside: " + ec.message());
  }
  fs::rename(tmp, dir, ec);
  if (ec) return IoError(dir + ": cannot rename " + tmp + " into place: " + ec.message());
  fs::remove_all(old, ec);
  return Status::Ok();
}

Status LoadCheckpoint(const std::string& dir, Model<float>* model, Optimizer<float>* opt, TrainerState* st) {
  if (!fs::is_directory(dir)) return NotFound(dir + ": no checkpoint directory");
  K2_ASSIGN_OR_RETURN(ModelConfig saved, LoadModelConfig(dir + "/config.json"));
  if (ModelConfigToJson(saved) != ModelConfigToJson(model->config()))
    return InvalidArgument(dir + "/config.json: the checkpoint's model config differs from the requested model");
  K2_RETURN_IF_ERROR(model->LoadSafetensors(dir + "/model.safetensors"));
  const std::string op = dir + "/optimizer.safetensors";
  K2_ASSIGN_OR_RETURN(StFile f, ReadSafetensors(op));
  for (auto& [name, vec] : opt->StateTensors()) {
    auto it = f.tensors.find(name);
    if (it == f.tensors.end()) return Corruption(op + ": missing optimizer state \"" + name + "\"");
    if (it->second.numel() != static_cast<int64_t>(vec->size()))
      return Corruption(op + ": optimizer state \"" + name + "\" has the wrong size");
    K2_ASSIGN_OR_RETURN(std::vector<double> v, StToDouble(it->second, name));
    for (size_t i = 0; i < v.size(); ++i) (*vec)[i] = static_cast<float>(v[i]);
  }
  const std::string sp = dir + "/trainer_state.json";
  K2_ASSIGN_OR_RETURN(json js, ReadJsonFile(sp));
  if (!js.is_object() || js.value("format", "") != "k2gym-trainer-state" || !js.contains("step") ||
      !js["step"].is_number_integer() || !js.contains("data_position") || !js["data_position"].is_number_integer() ||
      !js.contains("rng") || !js["rng"].is_array() || js["rng"].size() != 4)
    return Corruption(sp + ": expected {format: k2gym-trainer-state, step, data_position, rng[4]}");
  st->step = js["step"].get<int64_t>();
  st->data_position = js["data_position"].get<int64_t>();
  for (int i = 0; i < 4; ++i) {
    if (!js["rng"][i].is_number_unsigned()) return Corruption(sp + ": rng[" + std::to_string(i) + "]: expected uint64");
    st->rng[i] = js["rng"][i].get<uint64_t>();
  }
  st->extra = js.value("extra", json::object());
  return Status::Ok();
}

}  // namespace k2::engine
