#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "io/half.hpp"
#include "test_util.hpp"
#include "vvae/error.hpp"
#include "vvae/safetensors.hpp"

namespace vvae::test {
namespace {

namespace fs = std::filesystem;

std::string floats(std::initializer_list<float> values) {
  std::string s;
  for (float v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);
  return s;
}

// Opening `bytes` as a safetensors file fails with a message containing `expected`.
void expect_rejected(const std::string& bytes, const std::string& expected) {
  const std::string path = temp_path("bad.safetensors");
  write_bytes(path, bytes);
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << "accepted a file that should fail with: " << expected;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RoundTripWithMetadata) {
  const std::string path = temp_path("round.safetensors");
  Tensor a = random_tensor({2, 3, 4}, 1), b = random_tensor({5}, 2);
  save_safetensors(path, {{"a", a}, {"b", b}}, {{"family", "ae2d"}, {"fps", "24"}});
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_EQ(f.entries().size(), 2u);
  EXPECT_EQ(f.metadata().at("family"), "ae2d");
  EXPECT_EQ(f.metadata().at("fps"), "24");
  EXPECT_EQ(max_abs_diff(f.load("a"), a), 0.0);
  EXPECT_EQ(max_abs_diff(f.load("b"), b), 0.0);
  EXPECT_EQ(f.load("a").shape(), (Shape{2, 3, 4}));
}

TEST(Safetensors, ReadsGoldenFile) {
  const SafetensorsFile f = SafetensorsFile::open(data_path("golden/ae2d_small/io.safetensors"));
  EXPECT_EQ(f.load("x").shape(), (Shape{1, 3, 3, 32, 32}));
  EXPECT_TRUE(f.contains("dec"));
}

TEST(Safetensors, ConvertsHalfBfloatAndDouble) {
  std::string data;
  for (float v : {1.0f, -2.5f, 0.0f}) {
    const uint16_t h = float_to_half(v);
    data.append(reinterpret_cast<const char*>(&h), 2);
  }
  for (float v : {3.0f, -0.15625f}) {
    const uint16_t h = float_to_bf16(v);
    data.append(reinterpret_cast<const char*>(&h), 2);
  }
  data.append(2, '\0');  // align the doubles
  for (double v : {0.125, -7.0}) data.append(reinterpret_cast<const char*>(&v), 8);
  const std::string header = R"({"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},)"
                             R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]},)"
                             R"("d":{"dtype":"F64","shape":[2],"data_offsets":[12,28]}})";
  const std::string path = temp_path("dtypes.safetensors");
  write_bytes(path, safetensors_bytes(header, data));
  const SafetensorsFile f = SafetensorsFile::open(path);
  const Tensor h = f.load("h"), b = f.load("b"), d = f.load("d");
  EXPECT_EQ(h.data()[0], 1.0f);
  EXPECT_EQ(h.data()[1], -2.5f);
  EXPECT_EQ(h.data()[2], 0.0f);
  EXPECT_EQ(b.data()[0], 3.0f);
  EXPECT_EQ(b.data()[1], -0.15625f);
  EXPECT_EQ(d.data()[0], 0.125f);
  EXPECT_EQ(d.data()[1], -7.0f);
}

TEST(Safetensors, HalfConversionIsExactOnAllHalfValues) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    const float f = half_to_float(h);
    if (f != f) continue;  // NaN payloads need not round-trip
    ASSERT_EQ(float_to_half(f), h) << "half bits " << bits;
  }
  EXPECT_EQ(half_to_float(float_to_half(65520.0f)),
            std::numeric_limits<float>::infinity());          // rounds past the largest half
  EXPECT_EQ(half_to_float(0x0001), 5.9604644775390625e-08f);  // smallest subnormal
}

TEST(Safetensors, RejectsIntegerTensorsOnLoad) {
  const std::string path = temp_path("int.safetensors");
  write_bytes(path, safetensors_bytes(R"({"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})",
                                      std::string(8, '\0')));
  const SafetensorsFile f = SafetensorsFile::open(path);
  EXPECT_THROW(f.load("i"), Error);
  EXPECT_THROW(f.load("missing"), Error);
}

TEST(Safetensors, RejectsBrokenFiles) {
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  expect_rejected("abc", "too short");
  expect_rejected(safetensors_bytes("{" + ok_entry + "}", floats({1})), "lies outside the file");
  {
    std::string bytes = safetensors_bytes("{}", "");
    const uint64_t huge = 1ull << 40;
    std::memcpy(bytes.data(), &huge, 8);
    expect_rejected(bytes, "exceeds the 100 MB limit");
    const uint64_t past_end = 100;
    std::memcpy(bytes.data(), &past_end, 8);
    expect_rejected(bytes, "exceeds the file size");
  }
  expect_rejected(safetensors_bytes("{not json", ""), "not valid JSON");
  expect_rejected(safetensors_bytes("[1, 2]", ""), "not a JSON object");
  expect_rejected(
      safetensors_bytes(R"({"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", floats({1})),
      "unknown dtype");
  expect_rejected(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                                    floats({1, 2})),
                  "needs 12");
  expect_rejected(
      safetensors_bytes(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", floats({1})),
      "not a non-negative integer");
  expect_rejected(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                                    floats({1, 2, 3})),
                  "begin after end");
  expect_rejected(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                    floats({1, 2, 3})),
                  "overlap");
  expect_rejected(safetensors_bytes("{" + ok_entry + "," + ok_entry + "}", floats({1, 2})),
                  "appears twice");
  expect_rejected(safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1]}})", floats({1})),
                  "data_offsets");
  expect_rejected(safetensors_bytes(R"({"__metadata__":{"k":1}})", ""), "not a string");
  expect_rejected(
      safetensors_bytes(
          R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
          floats({1})),
      "too large");
}

TEST(Safetensors, WriterLeavesNothingOnFailure) {
  const std::string dir = temp_path("no_such_dir");
  EXPECT_THROW(save_safetensors(dir + "/out.safetensors", {{"a", random_tensor({2}, 1)}}), Error);
  EXPECT_FALSE(fs::exists(dir));
  // A failing write (duplicate names) removes its temporary file.
  const std::string path = temp_path("dup.safetensors");
  Tensor t = random_tensor({2}, 1);
  EXPECT_THROW(save_safetensors(path, {{"a", t}, {"a", t}}), Error);
  EXPECT_FALSE(fs::exists(path));
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
    EXPECT_EQ(entry.path().string().find("dup.safetensors.tmp"), std::string::npos);
}

TEST(Safetensors, OverwritesAtomically) {
  const std::string path = temp_path("over.safetensors");
  save_safetensors(path, {{"a", random_tensor({2}, 1)}});
  const SafetensorsFile before = SafetensorsFile::open(path);  // keeps the old mapping
  save_safetensors(path, {{"b", random_tensor({3}, 2)}});
  EXPECT_TRUE(before.contains("a"));
  EXPECT_TRUE(SafetensorsFile::open(path).contains("b"));
}

}  // namespace
}  // namespace vvae::test
