// The cache's keys: what identifies a source (size, mtime and a sampled SHA-256), the options a
// latent depends on, and where its latent lies; and whether a latent file there is one vvae
// wrote whole for that key.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

extern "C" {
#include <libavutil/mem.h>
#include <libavutil/sha.h>
}

#include "media/cache_files.hpp"
#include "media/clip_source.hpp"
#include "media/torch_file.hpp"
#include "vvae/error.hpp"
#include "vvae/latent.hpp"
#include "vvae/latent_cache.hpp"
#include "vvae/safetensors.hpp"

namespace vvae {

using Json = nlohmann::json;

namespace {

constexpr size_t kSampleBytes = 64 * 1024;
constexpr int kSourceSamples = 3;    // first, middle, last
constexpr int kWeightsSamples = 16;  // spread over the checkpoint

std::string hex(const unsigned char* bytes, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[bytes[i] >> 4];
    s += digits[bytes[i] & 15];
  }
  return s;
}

class Sha256 {
 public:
  Sha256() : ctx_(av_sha_alloc()) {
    if (ctx_ == nullptr || av_sha_init(ctx_, 256) != 0) fail("out of memory (SHA-256)");
  }
  ~Sha256() { av_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n) {
    av_sha_update(ctx_, static_cast<const uint8_t*>(data), n);
  }
  void update(const std::string& s) { update(s.data(), s.size()); }
  std::string hex_digest() {
    unsigned char digest[32];
    av_sha_final(ctx_, digest);
    return hex(digest, sizeof digest);
  }

 private:
  struct AVSHA* ctx_;
};

std::string sha256_hex(const std::string& text) {
  Sha256 h;
  h.update(text);
  return h.hex_digest();
}

struct FileSample {
  int64_t size = 0;
  int64_t mtime_ns = 0;
  std::string sha256;
};

// The size, mtime and the SHA-256 of `samples` evenly spread 64 KiB pieces of a file (the whole
// file when it is that small).
FileSample sample_file(const std::string& path, int samples) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot read '", path, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("cannot read '", path, "': not a regular file");
  }
  FileSample s;
  s.size = st.st_size;
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  Sha256 h;
  std::vector<char> buffer(kSampleBytes);
  auto read_piece = [&](int64_t offset, size_t bytes) {
    size_t got = 0;
    while (got < bytes) {
      const ssize_t n = ::pread(fd, buffer.data() + got, bytes - got, offset + got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        fail("cannot read '", path, "': ", std::strerror(err));
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    h.update(buffer.data(), got);
  };
  const auto piece = static_cast<int64_t>(kSampleBytes);
  if (s.size <= piece * samples) {
    for (int64_t at = 0; at < s.size; at += piece)
      read_piece(at, static_cast<size_t>(std::min(piece, s.size - at)));
  } else {
    for (int k = 0; k < samples; ++k)
      read_piece((s.size - piece) * k / (samples - 1), kSampleBytes);
  }
  ::close(fd);
  s.sha256 = h.hex_digest();
  return s;
}

}  // namespace

std::string source_identity(const std::string& path) {
  const FileSample s = sample_file(path, kSourceSamples);
  return Json{{"size", s.size}, {"mtime_ns", s.mtime_ns}, {"sample_sha256", s.sha256}}.dump();
}

std::string cache_options_json(const ModelInfo& info, const LatentCacheOptions& o) {
  Json weights = Json::array();
  for (const std::string& w : o.weights_files) {
    if (w.empty()) continue;
    const FileSample s = sample_file(w, kWeightsSamples);
    weights.push_back({{"size", s.size}, {"sample_sha256", s.sha256}});
  }
  // (nlohmann's objects keep their keys sorted: the text does not depend on the order set.)
  Json key = coding_settings_json(info, o.compute, o.clip, o.encode);
  key["weights"] = weights;
  // A cap may choose other tiles, which change the latents (keys of uncapped runs stay as they
  // were).
  Json with_cap = key;
  if (o.max_memory > 0) with_cap["max_memory"] = o.max_memory;
  return with_cap.dump();
}

std::string cache_options_id(const std::string& options_json) {
  return sha256_hex(options_json).substr(0, 16);
}

std::string cache_clip_key(const std::string& options_json, const std::string& identity) {
  return sha256_hex(options_json + "\n" + identity).substr(0, 32);
}

std::string cache_latent_path(const std::string& options_id, const std::string& key,
                              CacheFormat format) {
  return "latents/" + options_id + "/" + key.substr(0, 2) + "/" + key +
         cache_file_extension(format);
}

std::optional<Shape> cached_latent_shape(const std::string& path, const std::string& key,
                                         CacheFormat format) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  try {
    if (format == CacheFormat::kOpenSora) {
      const auto archive = read_torch_archive(path, {kCacheMetadataRecord});
      if (!archive || !archive->records.count(kCacheMetadataRecord)) return std::nullopt;
      const Json m = Json::parse(archive->records.at(kCacheMetadataRecord), nullptr, false);
      if (!m.is_object() || m.value("cache_key", "") != key || !m.contains("shape"))
        return std::nullopt;
      const Shape shape = m.at("shape").get<Shape>();
      const auto has = [&](const char* name, uint64_t bytes) {
        const auto it = archive->sizes.find(name);
        return it != archive->sizes.end() && it->second == bytes;
      };
      if (!has("data/0", static_cast<uint64_t>(numel(shape)) * sizeof(float)) ||
          !has("data.pkl", torch_tensor_pickle(shape).size()) || !has("version", 2) ||
          !has("byteorder", 6))
        return std::nullopt;
      return shape;
    }
    const SafetensorsFile f = SafetensorsFile::open(path);
    const auto k = f.metadata().find("cache_key");
    const SafetensorsEntry* z = f.find("z");
    if (k == f.metadata().end() || k->second != key || z == nullptr || z->dtype != "F32")
      return std::nullopt;
    // Every byte the header promises and no more: a file vvae wrote whole.
    uint64_t header_len = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(&header_len), sizeof header_len)) return std::nullopt;
    int64_t end = 0;
    for (const SafetensorsEntry& e : f.entries()) end = std::max(end, e.end);
    if (static_cast<uint64_t>(st.st_size) != 8 + header_len + static_cast<uint64_t>(end))
      return std::nullopt;
    return z->shape;
  } catch (const std::exception&) {
    return std::nullopt;  // not a complete latent: redo the clip
  }
}

}  // namespace vvae
