// The same input gives the same bits for any thread count: dataset caches and multi-worker runs
// compare latents made with different thread counts.
#include "test_util.hpp"

namespace vvae::test {
namespace {

struct Outputs {
  Tensor z, x;
};

Outputs encode_decode(const Model& model, const Tensor& x, int threads) {
  set_num_threads(threads);
  Outputs r;
  r.z = model.encode(x).z;
  r.x = model.decode(r.z);
  set_num_threads(0);
  return r;
}

class ThreadCounts : public ::testing::TestWithParam<std::tuple<std::string, ConvAlgorithm>> {};

TEST_P(ThreadCounts, GiveTheSameBits) {
  const auto& [name, algorithm] = GetParam();
  LoadOptions o;
  o.model = data_path("golden/" + name);
  o.compute.conv_algorithm = algorithm;
  const Model model = Model::load(o);
  const Tensor x = SafetensorsFile::open(data_path("golden/" + name + "/io.safetensors")).load("x");
  const Outputs one = encode_decode(model, x, 1);
  for (const int threads : {2, 3}) {
    const Outputs many = encode_decode(model, x, threads);
    EXPECT_EQ(max_abs_diff(one.z, many.z), 0.0) << threads << " threads";
    EXPECT_EQ(max_abs_diff(one.x, many.x), 0.0) << threads << " threads";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Golden, ThreadCounts,
    ::testing::Combine(::testing::Values("ae2d_small", "hunyuan_small", "dcae_small"),
                       ::testing::Values(ConvAlgorithm::kAuto, ConvAlgorithm::kDirect)),
    [](const auto& param) {
      return std::get<0>(param.param) + "_" + conv_algorithm_name(std::get<1>(param.param));
    });

}  // namespace
}  // namespace vvae::test
