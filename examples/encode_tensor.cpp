// Encodes a tensor to a latent and decodes it back with the engine alone (vvae::engine):
//
//   encode_tensor MODEL_DIR [FRAMES HEIGHT WIDTH]
//
// MODEL_DIR holds config.json and weights.safetensors (for example tests/data/golden/ae2d_small
// or models/ae2d-tiny). The input is a smooth synthetic clip in [-1, 1]; the program prints the
// shapes and the reconstruction's mean absolute error.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "vvae/model.hpp"

int main(int argc, char** argv) {
  if (argc != 2 && argc != 5) {
    std::fprintf(stderr, "usage: encode_tensor MODEL_DIR [FRAMES HEIGHT WIDTH]\n");
    return 2;
  }
  try {
    vvae::LoadOptions load;
    load.model = argv[1];
    const vvae::Model model = vvae::Model::load(load);
    const vvae::ModelInfo& info = model.info();

    const int64_t frames = argc == 5 ? std::atoll(argv[2]) : (info.causal_time ? 5 : 1);
    const int64_t height = argc == 5 ? std::atoll(argv[3]) : 64;
    const int64_t width = argc == 5 ? std::atoll(argv[4]) : 64;
    vvae::Tensor x = vvae::Tensor::empty({1, info.in_channels, frames, height, width});
    // A smooth pattern, different per channel and frame: what a small model reconstructs well.
    float* values = x.data();
    const int64_t planes = x.numel() / (height * width);  // (channel, frame) pairs
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t h = 0; h < height; ++h)
        for (int64_t w = 0; w < width; ++w)
          values[(p * height + h) * width + w] =
              0.8f * std::sin(3.0f * float(h) / float(height) + float(p)) *
              std::cos(2.0f * float(w) / float(width));

    const vvae::EncodeResult latent = model.encode(x);
    const vvae::Tensor x_rec = model.decode(latent.z);
    double error = 0;
    for (int64_t i = 0; i < x.numel(); ++i) error += std::fabs(x_rec.data()[i] - values[i]);

    std::printf("vvae %s, family %s\n", vvae::version().c_str(), info.family.c_str());
    std::printf("x %s -> z %s -> x_rec %s\n", vvae::to_string(x.shape()).c_str(),
                vvae::to_string(latent.z.shape()).c_str(), vvae::to_string(x_rec.shape()).c_str());
    std::printf("mean |x_rec - x| = %.4f\n", error / double(x.numel()));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "encode_tensor: error: %s\n", e.what());
    return 1;
  }
}
