#pragma once
// Helpers for the tests: golden files, error measures, naive reference kernels.

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "vvae/model.hpp"
#include "vvae/safetensors.hpp"
#include "vvae/tensor.hpp"

namespace vvae::test {

std::string data_path(const std::string& relative);  // under tests/data
std::string temp_path(const std::string& name);      // a fresh path in a per-process temp dir
// The message of the vvae::Error `fn` throws; "" when it throws none.
std::string error_of(const std::function<void()>& fn);

// max |a - b| / max |b|; shapes must match.
double relative_error(const Tensor& a, const Tensor& b);
double max_abs_diff(const Tensor& a, const Tensor& b);

// Parity: a within tol of the reference b, with a readable failure message.
::testing::AssertionResult close(const Tensor& a, const Tensor& b, double tol = 1e-4);

// Every value finite (no NaN or infinity), else the first bad index.
::testing::AssertionResult all_finite(const Tensor& t);

// Posterior sampling is keyed by its seed: the same seed gives the same latent (up to the last
// bits oneDNN may change between runs), another seed or the mode a latent O(std) away, and the
// posterior itself does not move.
void expect_seeded_sampling(const Model& model, const Tensor& x);

// Why this CPU (or VVAE_MAX_ISA) cannot run `mode`, or empty when it can.
std::string mode_unavailable(const ComputeOptions& mode);
// Skips the test, saying why, when the CPU cannot run `mode`: never a pass for a path not run.
#define VVAE_SKIP_UNLESS_CPU_RUNS(mode)                                             \
  do {                                                                              \
    if (const std::string why = ::vvae::test::mode_unavailable(mode); !why.empty()) \
      GTEST_SKIP() << why;                                                          \
  } while (0)

// The default compute mode (vvae's Winograd) against oneDNN's direct convolutions on the same
// checkpoint: encode (z, and mean for variational families) and decode of the direct latent,
// each within `tol` relative error; prints the errors.
void expect_default_matches_direct(LoadOptions options, const Tensor& x, double tol = 1e-4);

// Uniform [-1, 1) values from a seed, deterministic.
Tensor random_tensor(const Shape& shape, uint64_t seed, float scale = 1.0f);

// b stacked `times` along axis 0.
Tensor repeat_batch(const Tensor& x, int64_t times);

// Writes raw bytes (for crafting broken files).
void write_bytes(const std::string& path, const std::string& bytes);
// A safetensors file built from a header JSON text and a data section.
std::string safetensors_bytes(const std::string& header, const std::string& data);

// A released model's parameter list (tests/data/keys/<preset>.txt: "name [d0, d1, ...]" lines),
// in file order.
std::vector<ParameterInfo> read_key_list(const std::string& relative_path);
std::map<std::string, Shape> by_name(const std::vector<ParameterInfo>& parameters);

}  // namespace vvae::test
