// The latent cache (issue 15) through its API, the one the CLI and the Python binding call:
// torch.save's format written natively (zip structure, alignment, CRC, the pickle's opcodes),
// content keys, CSV rows, Slurm shards, and encode_manifest on generated clips: the index,
// duplicates, failures, resume by content and an index merged with another run's rows.
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "media/torch_file.hpp"
#include "test_util.hpp"
#include "video_maker.hpp"
#include "vvae/latent.hpp"
#include "vvae/latent_cache.hpp"
#include "vvae/manifest.hpp"

namespace vvae {
namespace {

namespace fs = std::filesystem;
using test::temp_path;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_all(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(TorchFile, Crc32) {
  EXPECT_EQ(crc32("123456789", 9), 0xCBF43926u);  // the check value of CRC-32/ISO-HDLC
  EXPECT_EQ(crc32("", 0), 0u);
  EXPECT_EQ(crc32("6789", 4, crc32("12345", 5)), 0xCBF43926u);
}

TEST(TorchFile, PickleOfATensor) {
  const std::string p = torch_tensor_pickle({2, 3});
  // Protocol 2, the rebuild function, the storage's persistent id, offset 0, size (2, 3),
  // strides (3, 1), requires_grad False, an empty OrderedDict, STOP.
  EXPECT_EQ(p.substr(0, 2), std::string("\x80\x02", 2));
  EXPECT_NE(p.find("ctorch._utils\n_rebuild_tensor_v2\n"), std::string::npos);
  EXPECT_NE(p.find(std::string("X\x07\0\0\0storage", 12)), std::string::npos);
  EXPECT_NE(p.find("ctorch\nFloatStorage\n"), std::string::npos);
  EXPECT_NE(p.find(std::string("X\x03\0\0\0cpuK\x06tQK\x00(K\x02K\x03t(K\x03K\x01t\x89", 27)),
            std::string::npos);
  EXPECT_NE(p.find("ccollections\nOrderedDict\n)R"), std::string::npos);
  EXPECT_EQ(p.substr(p.size() - 3), "tR.");
  // Element counts past 2^31 take LONG1 (5 bytes, little-endian, sign bit clear).
  const std::string big = torch_tensor_pickle({int64_t{1} << 33});
  EXPECT_NE(big.find(std::string("\x8a\x05\0\0\0\0\x02", 7)), std::string::npos);
  // 65536..2^31 take BININT.
  EXPECT_NE(torch_tensor_pickle({70000}).find(std::string("J\x70\x11\x01\x00", 5)),
            std::string::npos);
}

TEST(TorchFile, ArchiveRecordsAlignedAndChecked) {
  const Tensor t = test::random_tensor({4, 3, 5, 7}, 11);
  const std::string path = temp_path("t.pt");
  write_torch_file(path, t, {{"vvae/metadata.json", "{\"a\":1}"}});
  const auto archive = read_torch_archive(path, {"data/0", "vvae/metadata.json", "version"});
  ASSERT_TRUE(archive);
  EXPECT_EQ(archive->records.at("version"), "3\n");
  EXPECT_EQ(archive->records.at("vvae/metadata.json"), "{\"a\":1}");
  ASSERT_EQ(archive->records.at("data/0").size(), static_cast<size_t>(t.bytes()));
  EXPECT_EQ(std::memcmp(archive->records.at("data/0").data(), t.data(), t.bytes()), 0);
  for (const char* name : {"data.pkl", "byteorder", "data/0", "version", "vvae/metadata.json"}) {
    ASSERT_TRUE(archive->offsets.count(name)) << name;
    EXPECT_EQ(archive->offsets.at(name) % 64, 0u) << name;  // torch's 64-byte alignment
  }
  EXPECT_EQ(archive->sizes.at("byteorder"), 6u);
  // A byte changed in a record is caught by its CRC; a cut file by the end record.
  std::string bytes = read_all(path);
  const std::string damaged = temp_path("damaged.pt");
  std::string copy = bytes;
  const size_t flip = archive->offsets.at("data/0") + 5;
  copy[flip] = static_cast<char>(copy[flip] ^ 1);
  write_all(damaged, copy);
  EXPECT_FALSE(read_torch_archive(damaged, {"data/0"}));
  write_all(damaged, bytes.substr(0, bytes.size() - 1));
  EXPECT_FALSE(read_torch_archive(damaged, {}));
  write_all(damaged, bytes.substr(0, bytes.size() / 2));
  EXPECT_FALSE(read_torch_archive(damaged, {}));
  EXPECT_FALSE(read_torch_archive(temp_path("absent.pt"), {}));
  // The same tensor gives the same bytes (fixed dates, no random names inside).
  const std::string again = temp_path("t2.pt");
  write_torch_file(again, t, {{"vvae/metadata.json", "{\"a\":1}"}});
  EXPECT_EQ(read_all(again), bytes);
}

TEST(LatentCache, CsvRowsRoundTrip) {
  const std::vector<std::string> fields = {"plain", "a,b", "say \"hi\"", "two\nlines", "", "\r"};
  const auto rows = parse_csv(format_csv_row(fields) + format_csv_row({"x", "y"}));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], fields);
  EXPECT_EQ(format_csv_row({"a", "b"}), "a,b\n");
}

TEST(LatentCache, SlurmShard) {
  ::setenv("SLURM_ARRAY_TASK_ID", "7", 1);
  ::setenv("SLURM_ARRAY_TASK_MIN", "5", 1);
  ::setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
  Shard s = parse_shard("auto");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 4);
  ::setenv("SLURM_ARRAY_TASK_STEP", "2", 1);  // --array=5-11:2: ids 5, 7, 9, 11
  s = parse_shard("auto");
  EXPECT_EQ(s.index, 1);
  ::setenv("SLURM_ARRAY_TASK_ID", "8", 1);  // not on the step
  EXPECT_THROW(parse_shard("auto"), Error);
  ::unsetenv("SLURM_ARRAY_TASK_STEP");
  ::setenv("SLURM_ARRAY_TASK_ID", "9", 1);  // past the count (ids not contiguous)
  EXPECT_THROW(parse_shard("auto"), Error);
  ::unsetenv("SLURM_ARRAY_TASK_ID");
  EXPECT_THROW(parse_shard("auto"), Error);
  ::unsetenv("SLURM_ARRAY_TASK_MIN");
  ::unsetenv("SLURM_ARRAY_TASK_COUNT");
  EXPECT_EQ(parse_shard("1/3").index, 1);
}

TEST(LatentCache, SourceIdentityFollowsContentAndMtime) {
  const std::string a = temp_path("id_a.bin"), b = temp_path("id_b.bin");
  std::string big(300 * 1024, 'x');
  write_all(a, big);
  const std::string id = source_identity(a);
  EXPECT_EQ(source_identity(a), id);
  // The same bytes elsewhere with the same mtime: the same identity (a copy, cp -p).
  write_all(b, big);
  const auto mtime = fs::last_write_time(a);
  fs::last_write_time(b, mtime);
  EXPECT_EQ(source_identity(b), id);
  // A byte changed in a sampled piece (the middle 64 KiB), the same size and mtime: another.
  big[big.size() / 2] = 'y';
  write_all(b, big);
  fs::last_write_time(b, mtime);
  EXPECT_NE(source_identity(b), id);
  // Another mtime, the same bytes: another.
  write_all(b, std::string(300 * 1024, 'x'));
  fs::last_write_time(b, mtime + std::chrono::seconds(5));
  EXPECT_NE(source_identity(b), id);
  EXPECT_THROW(source_identity(temp_path("none.bin")), Error);

  const std::string key = cache_clip_key("{\"o\":1}", id);
  EXPECT_EQ(key.size(), 32u);
  EXPECT_NE(cache_clip_key("{\"o\":2}", id), key);
  EXPECT_EQ(cache_latent_path("0123456789abcdef", key, CacheFormat::kSafetensors),
            "latents/0123456789abcdef/" + key.substr(0, 2) + "/" + key + ".safetensors");
}

class CacheRun : public ::testing::Test {
 protected:
  void SetUp() override {
    LoadOptions load;
    load.model = test::data_path("golden/ae2d_small");
    model_.emplace(Model::load(load));
    dir_ = temp_path(::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ + "/clips");
    for (int i = 0; i < 4; ++i) {
      clips_.push_back(dir_ + "/clips/c" + std::to_string(i) + ".mkv");
      test::make_video(clips_.back(), test::moving_frames(3 + i, 32, 48), {});
    }
  }

  LatentCacheOptions options(const std::string& out) {
    LatentCacheOptions o;
    o.out_dir = dir_ + "/" + out;
    o.weights_files = {test::data_path("golden/ae2d_small/weights.safetensors")};
    return o;
  }

  ManifestTable manifest(const std::vector<std::string>& paths) {
    std::string csv = "path,caption\n";
    for (size_t i = 0; i < paths.size(); ++i)
      csv += paths[i] + ",\"row " + std::to_string(i) + "\"\n";
    const std::string path = dir_ + "/m" + std::to_string(manifests_++) + ".csv";
    write_all(path, csv);
    return read_manifest_table(path);
  }

  static std::vector<std::vector<std::string>> index_rows(const std::string& out) {
    return parse_csv(read_all(out + "/index.csv"));
  }

  std::optional<Model> model_;
  std::string dir_;
  std::vector<std::string> clips_;
  int manifests_ = 0;
};

TEST_F(CacheRun, IndexDuplicatesFailuresAndResume) {
  const LatentCacheOptions o = options("cache");
  const ManifestTable table =
      manifest({clips_[0], clips_[1], clips_[0], dir_ + "/missing.mkv", clips_[2]});
  std::vector<int64_t> reported;
  const CacheRunResult r =
      encode_manifest(*model_, table, o, [&](const CacheRow&, int64_t done, int64_t total) {
        reported.push_back(done);
        EXPECT_EQ(total, 5);
      });
  EXPECT_EQ(reported.size(), 5u);
  EXPECT_EQ(r.encoded, 3);
  EXPECT_EQ(r.duplicates, 1);
  EXPECT_EQ(r.failed, 1);
  ASSERT_EQ(r.rows.size(), 5u);
  EXPECT_EQ(r.rows[2].latents_path, r.rows[0].latents_path);
  EXPECT_NE(r.rows[3].error.find("missing.mkv"), std::string::npos);
  EXPECT_EQ(r.rows[1].latent_shape, (Shape{1, 4, 4, 16, 24}));

  const auto rows = index_rows(o.out_dir);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"path", "caption", "latents_path", "latent_shape",
                                               "status", "error", "latent_key", "cache_options"}));
  EXPECT_EQ(rows[4][4], "failed");
  EXPECT_EQ(rows[2][1], "row 1");
  EXPECT_EQ(rows[2][3], "1x4x4x16x24");

  // The latent as the cache holds it: z, mean, logvar and its key.
  const LatentFile latent = read_latent_file(r.rows[1].latents_path);
  EXPECT_EQ(latent.metadata.at("cache_key"), r.rows[1].key);
  EXPECT_TRUE(latent.mean.defined());
  EXPECT_TRUE(cached_latent_shape(r.rows[1].latents_path, r.rows[1].key, o.format));
  EXPECT_FALSE(cached_latent_shape(r.rows[1].latents_path, r.rows[0].key, o.format));

  // Resume with the rows reversed: nothing encoded again, and the lock file of a run killed
  // after writing its latent goes.
  const std::string stale_lock =
      (fs::path(r.rows[1].latents_path).parent_path() / ("." + r.rows[1].key + ".vvae-lock"))
          .string();
  write_all(stale_lock, "");
  LatentCacheOptions again = o;
  again.resume = true;
  const CacheRunResult r2 =
      encode_manifest(*model_, manifest({clips_[2], clips_[0], clips_[1], clips_[0]}), again);
  EXPECT_FALSE(fs::exists(stale_lock));
  EXPECT_EQ(r2.encoded, 0);
  EXPECT_EQ(r2.resumed, 3);
  EXPECT_EQ(r2.duplicates, 1);
  // The index now lists this manifest's rows; the earlier manifest's row that is not in it
  // (missing.mkv) stays at the end.
  const auto rows2 = index_rows(o.out_dir);
  ASSERT_EQ(rows2.size(), 6u);
  EXPECT_EQ(rows2[1][0], clips_[2]);
  EXPECT_EQ(rows2[5][0], dir_ + "/missing.mkv");
  EXPECT_EQ(rows2[5][4], "failed");

  // A truncated latent is not complete: a resume encodes it again.
  const std::string victim = r.rows[1].latents_path;
  const std::string bytes = read_all(victim);
  write_all(victim, bytes.substr(0, bytes.size() - 4));
  EXPECT_FALSE(cached_latent_shape(victim, r.rows[1].key, o.format));
  const CacheRunResult r3 = encode_manifest(*model_, manifest({clips_[0], clips_[1]}), again);
  EXPECT_EQ(r3.encoded, 1);
  EXPECT_EQ(r3.resumed, 1);
  EXPECT_EQ(read_all(victim), bytes);
}

TEST_F(CacheRun, ShardsMergeIntoOneIndex) {
  const ManifestTable table = manifest({clips_[0], clips_[1], clips_[2], clips_[3]});
  LatentCacheOptions o = options("shards");
  o.index_every_seconds = 1e-9;  // merge after every row as well: the end result is the same
  o.shard = {1, 2};
  encode_manifest(*model_, table, o);
  auto rows = index_rows(o.out_dir);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[1][4], "pending");
  EXPECT_EQ(rows[2][4], "ok");
  o.shard = {0, 2};
  encode_manifest(*model_, table, o);
  rows = index_rows(o.out_dir);
  ASSERT_EQ(rows.size(), 5u);
  for (size_t i = 1; i < rows.size(); ++i) EXPECT_EQ(rows[i][4], "ok") << i;
  // Other options are another cache in the same folder: those rows are pending there.
  LatentCacheOptions other = options("shards");
  other.encode = {true, 7};
  other.shard = {0, 2};
  encode_manifest(*model_, table, other);
  rows = index_rows(o.out_dir);
  EXPECT_EQ(rows[1][4], "ok");
  EXPECT_EQ(rows[2][4], "pending");
}

TEST_F(CacheRun, OpenSoraFormat) {
  LatentCacheOptions o = options("pt");
  o.format = CacheFormat::kOpenSora;
  const CacheRunResult r = encode_manifest(*model_, manifest({clips_[0], clips_[3]}), o);
  ASSERT_EQ(r.encoded, 2);
  EXPECT_EQ(r.rows[1].latent_shape, (Shape{4, 6, 16, 24}));
  EXPECT_EQ(fs::path(r.rows[1].latents_path).extension(), ".pt");
  const auto archive = read_torch_archive(r.rows[1].latents_path, {"data/0"});
  ASSERT_TRUE(archive);
  EXPECT_EQ(archive->records.at("data/0").size(), 4u * 4 * 6 * 16 * 24);
  const auto train = parse_csv(read_all(o.out_dir + "/train.csv"));
  ASSERT_EQ(train.size(), 3u);
  EXPECT_EQ(train[0], (std::vector<std::string>{"path", "caption", "latents_path", "text_t5_path",
                                                "text_clip_path"}));
  EXPECT_EQ(train[2][2], r.rows[1].latents_path);
  o.resume = true;
  EXPECT_EQ(encode_manifest(*model_, manifest({clips_[3], clips_[0]}), o).resumed, 2);
}

TEST_F(CacheRun, RefusesAForeignIndex) {
  const LatentCacheOptions o = options("foreign");
  fs::create_directories(o.out_dir);
  write_all(o.out_dir + "/index.csv", "a,b\n1,2\n");
  EXPECT_THROW(encode_manifest(*model_, manifest({clips_[0]}), o), Error);
  EXPECT_EQ(read_all(o.out_dir + "/index.csv"), "a,b\n1,2\n");
  EXPECT_FALSE(fs::exists(o.out_dir + "/latents"));
}

}  // namespace
}  // namespace vvae
