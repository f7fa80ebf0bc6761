// Reconstructs a video through a model with the media library (vvae::media): reads the clip as
// Open-Sora's loader would, encodes, decodes, writes the reconstruction and prints PSNR/SSIM.
//
//   reconstruct_video MODEL_DIR INPUT_VIDEO OUTPUT_VIDEO [NUM_FRAMES]
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "vvae/media.hpp"
#include "vvae/model.hpp"

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr,
                 "usage: reconstruct_video MODEL_DIR INPUT_VIDEO OUTPUT_VIDEO [NUM_FRAMES]\n");
    return 2;
  }
  try {
    vvae::LoadOptions load;
    load.model = argv[1];
    const vvae::Model model = vvae::Model::load(load);

    vvae::ClipOptions clip_options;
    if (argc == 5) clip_options.frames.num_frames = std::atoll(argv[4]);
    const vvae::Clip clip = vvae::load_clip(argv[2], clip_options, vvae::shape_rules(model));

    const vvae::Tensor x_rec = model.decode(model.encode(clip.x).z);
    const vvae::RgbFrames original = vvae::tensor_to_rgb(clip.x);
    const vvae::RgbFrames reconstruction = vvae::tensor_to_rgb(x_rec);
    vvae::VideoWriteOptions write_options;
    if (clip.fps > 0) write_options.fps = clip.fps;
    vvae::write_video(argv[3], reconstruction, write_options);

    const vvae::ClipMetrics metrics = vvae::clip_metrics(original, reconstruction);
    std::printf("%s: %lld frames %lldx%lld, PSNR %.2f dB, SSIM %.4f -> %s\n", argv[2],
                static_cast<long long>(clip.frames()), static_cast<long long>(clip.height()),
                static_cast<long long>(clip.width()), metrics.mean_psnr, metrics.mean_ssim,
                argv[3]);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reconstruct_video: error: %s\n", e.what());
    return 1;
  }
}
