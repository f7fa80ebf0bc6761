#include "io/config.hpp"

#include <cmath>
#include <fstream>

#include "vvae/error.hpp"
#include "vvae/limits.hpp"

namespace vvae {

namespace {

// A value for a one-line message: its JSON, cut short when long.
std::string brief(const Json& v) {
  std::string text = v.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

}  // namespace

Json parse_config_json(const std::string& text, const std::string& source) {
  limits::check_json_depth(text.data(), text.data() + text.size(), "config '" + source + "'");
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    fail("config '", source, "' is not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail("config '", source, "' is not a JSON object");
  return j;
}

ModelConfig vvae_model_config(const Json& j, const std::string& source) {
  if (!j.contains("family") || !j["family"].is_string())
    fail("config '", source,
         "' has no \"family\" string (ae2d, hunyuan or dcae) nor a diffusers \"_class_name\"");
  ModelConfig config;
  config.family = j["family"].get<std::string>();
  config.source = source;
  if (j.contains("model_args")) {
    if (!j["model_args"].is_object())
      fail("config '", source, "': \"model_args\" is not an object");
    config.args = j["model_args"];
  }
  return config;
}

ModelConfig parse_model_config(const std::string& text, const std::string& source) {
  return vvae_model_config(parse_config_json(text, source), source);
}

Json read_config_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read config '", path, "'");
  std::string text;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (static_cast<int64_t>(text.size()) > limits::kMaxConfigBytes)
      fail("config '", path, "' is larger than ", limits::kMaxConfigBytes >> 20,
           " MiB (vvae's limit); a model config is a small JSON file");
  }
  return parse_config_json(text, path);
}

ModelConfig read_model_config(const std::string& path) {
  return vvae_model_config(read_config_json(path), path);
}

ArgReader::ArgReader(const Json& args, std::string family, std::string path)
    : args_(args), family_(std::move(family)), path_(std::move(path)) {}

const Json* ArgReader::find(const std::string& key) {
  seen_.insert(key);
  auto it = args_.find(key);
  return it == args_.end() ? nullptr : &*it;
}

bool ArgReader::has(const std::string& key) const {
  return args_.contains(key);
}

void ArgReader::bad_type(const std::string& key, const char* expected) const {
  fail(family_, " ", path_, ".", key, " must be ", expected, ", got ", brief(args_.at(key)));
}

void ArgReader::check_bounds(const std::string& key, const Json& v, int64_t lo, int64_t hi) const {
  // Unsigned JSON integers above INT64_MAX are refused here too, before any conversion.
  bool inside = false;
  if (v.is_number_unsigned()) {  // nlohmann reads every non-negative integer as unsigned
    const uint64_t u = v.get<uint64_t>();
    inside =
        (lo <= 0 || u >= static_cast<uint64_t>(lo)) && hi >= 0 && u <= static_cast<uint64_t>(hi);
  } else {
    const int64_t i = v.get<int64_t>();
    inside = i >= lo && i <= hi;
  }
  if (!inside)
    fail(family_, " ", path_, ".", key, " = ", brief(v), " is out of range: it must be in [", lo,
         ", ", hi, "] (vvae's limit)");
}

int64_t ArgReader::get_int(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_number_integer()) bad_type(key, "an integer");
  check_bounds(key, *v, lo, hi);
  return v->get<int64_t>();
}

double ArgReader::get_number(const std::string& key, double fallback) {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_number() || !std::isfinite(v->get<double>())) bad_type(key, "a finite number");
  return v->get<double>();
}

double ArgReader::get_optional_number(const std::string& key, double fallback) {
  const Json* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_number() || !std::isfinite(v->get<double>())) bad_type(key, "a finite number or null");
  return v->get<double>();
}

bool ArgReader::get_bool(const std::string& key, bool fallback) {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) bad_type(key, "true or false");
  return v->get<bool>();
}

std::string ArgReader::get_string(const std::string& key, const std::string& fallback) {
  const Json* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_string()) bad_type(key, "a string");
  return v->get<std::string>();
}

std::vector<int64_t> ArgReader::get_int_list(const std::string& key,
                                             const std::vector<int64_t>& fallback, int64_t lo,
                                             int64_t hi, size_t max_size) {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_array()) bad_type(key, "a list of integers");
  check_size(key, *v, max_size);
  std::vector<int64_t> out;
  for (const Json& e : *v) {
    if (!e.is_number_integer()) bad_type(key, "a list of integers");
    check_bounds(key, e, lo, hi);
    out.push_back(e.get<int64_t>());
  }
  return out;
}

void ArgReader::check_size(const std::string& key, const Json& v, size_t max_size) const {
  if (v.size() > max_size)
    fail(family_, " ", path_, ".", key, " has ", v.size(), " entries; vvae's limit is ", max_size);
}

std::vector<std::string> ArgReader::get_string_list(const std::string& key,
                                                    const std::vector<std::string>& fallback) {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) bad_type(key, "a list of strings");
  check_size(key, *v, kMaxListSize);
  std::vector<std::string> out;
  for (const Json& e : *v) {
    if (!e.is_string()) bad_type(key, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::vector<bool> ArgReader::get_bool_list(const std::string& key,
                                           const std::vector<bool>& fallback) {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_array()) bad_type(key, "a list of true/false");
  check_size(key, *v, kMaxListSize);
  std::vector<bool> out;
  for (const Json& e : *v) {
    if (!e.is_boolean()) bad_type(key, "a list of true/false");
    out.push_back(e.get<bool>());
  }
  return out;
}

Json ArgReader::get_object(const std::string& key) {
  const Json* v = find(key);
  if (v == nullptr || v->is_null()) return Json::object();
  if (!v->is_object()) bad_type(key, "an object");
  return *v;
}

void ArgReader::ignore(const std::string& key) {
  seen_.insert(key);
}

void ArgReader::require(const std::string& key, const Json& supported, const std::string& why) {
  const Json* v = find(key);
  if (v != nullptr && *v != supported)
    fail(family_, " ", path_, ".", key, " = ", brief(*v), " is not supported (", why, ")");
}

void ArgReader::finish() const {
  for (const auto& [key, value] : args_.items())
    if (!seen_.count(key))
      fail(family_, " ", path_, " has unknown key '", key, "' (value ", brief(value),
           "); vvae refuses settings it does not implement");
}

}  // namespace vvae
