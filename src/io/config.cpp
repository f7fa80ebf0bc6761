#include "io/config.hpp"

#include <fstream>
#include <sstream>

#include "vvae/error.hpp"

namespace vvae {

ModelConfig parse_model_config(const std::string& text, const std::string& source) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    fail("config '", source, "' is not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail("config '", source, "' is not a JSON object");
  if (!j.contains("family") || !j["family"].is_string())
    fail("config '", source, "' has no \"family\" string (ae2d, hunyuan or dcae)");
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

ModelConfig read_model_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read config '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  return parse_model_config(text.str(), path);
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
  fail(family_, " ", path_, ".", key, " must be ", expected, ", got ", args_.at(key).dump());
}

int64_t ArgReader::get_int(const std::string& key, int64_t fallback) {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_number_integer()) bad_type(key, "an integer");
  return v->get<int64_t>();
}

double ArgReader::get_number(const std::string& key, double fallback) {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) bad_type(key, "a number");
  return v->get<double>();
}

double ArgReader::get_optional_number(const std::string& key, double fallback) {
  const Json* v = find(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_number()) bad_type(key, "a number or null");
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
                                             const std::vector<int64_t>& fallback) {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_array()) bad_type(key, "a list of integers");
  std::vector<int64_t> out;
  for (const Json& e : *v) {
    if (!e.is_number_integer()) bad_type(key, "a list of integers");
    out.push_back(e.get<int64_t>());
  }
  return out;
}

std::vector<std::string> ArgReader::get_string_list(const std::string& key,
                                                    const std::vector<std::string>& fallback) {
  const Json* v = find(key);
  if (v == nullptr) return fallback;
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) bad_type(key, "a list of strings");
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
    fail(family_, " ", path_, ".", key, " = ", v->dump(), " is not supported (", why, ")");
}

void ArgReader::finish() const {
  for (const auto& [key, value] : args_.items())
    if (!seen_.count(key))
      fail(family_, " ", path_, " has unknown key '", key, "' (value ", value.dump(),
           "); vvae refuses settings it does not implement");
}

}  // namespace vvae
