#pragma once
// vvae's model config is the golden `config.json` format: {"family": ..., "model_args": {...}}
// where model_args are the upstream constructor arguments; other top-level keys are ignored.
// ArgReader reads model_args with type checks and refuses keys a family does not know.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace vvae {

using Json = nlohmann::json;

struct ModelConfig {
  std::string family;
  Json args = Json::object();
  std::string source;  // where it came from, for messages
};

ModelConfig read_model_config(const std::string& path);
ModelConfig parse_model_config(const std::string& text, const std::string& source);
// The JSON object of a config file, within vvae's limits (size, nesting); `source` names it.
Json read_config_json(const std::string& path);
Json parse_config_json(const std::string& text, const std::string& source);
// vvae's config format from its JSON object.
ModelConfig vvae_model_config(const Json& config, const std::string& source);

class ArgReader {
 public:
  static constexpr int64_t kIntMin = -(int64_t{1} << 40);
  static constexpr int64_t kIntMax = int64_t{1} << 40;
  static constexpr size_t kMaxListSize = 64;

  // `path` names the object in messages: "model_args", or "model_args.encoder" for a nested
  // config read with its own ArgReader.
  ArgReader(const Json& args, std::string family, std::string path = "model_args");

  // Integers are bounded: a value outside [lo, hi] is refused, naming the limit (the defaults
  // only keep the arithmetic on them from overflowing; families pass their real limits).
  int64_t get_int(const std::string& key, int64_t fallback, int64_t lo = kIntMin,
                  int64_t hi = kIntMax);
  // Numbers must be finite.
  double get_number(const std::string& key, double fallback);
  bool get_bool(const std::string& key, bool fallback);
  std::string get_string(const std::string& key, const std::string& fallback);
  // At most `max_size` entries, each in [lo, hi].
  std::vector<int64_t> get_int_list(const std::string& key, const std::vector<int64_t>& fallback,
                                    int64_t lo = kIntMin, int64_t hi = kIntMax,
                                    size_t max_size = kMaxListSize);
  std::vector<std::string> get_string_list(const std::string& key,
                                           const std::vector<std::string>& fallback);
  std::vector<bool> get_bool_list(const std::string& key, const std::vector<bool>& fallback);
  // A number that may be null (None upstream); returns fallback when absent or null.
  double get_optional_number(const std::string& key, double fallback);
  // The sub-object at key (for nested configs); empty object when absent.
  Json get_object(const std::string& key);
  bool has(const std::string& key) const;
  // Keys that do not affect the math (paths, device hints): accepted and ignored.
  void ignore(const std::string& key);
  // A key whose only implemented value is `supported`; anything else is refused.
  void require(const std::string& key, const Json& supported, const std::string& why);
  // Throws if any key was neither read nor ignored.
  void finish() const;

 private:
  const Json* find(const std::string& key);
  [[noreturn]] void bad_type(const std::string& key, const char* expected) const;
  void check_bounds(const std::string& key, const Json& v, int64_t lo, int64_t hi) const;
  void check_size(const std::string& key, const Json& v, size_t max_size) const;

  const Json& args_;
  std::string family_;
  std::string path_;
  std::set<std::string> seen_;
};

}  // namespace vvae
