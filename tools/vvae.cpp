// vvae: encode clips to latents, decode latents to clips, reconstruct videos, describe models.
//
//   vvae encode      --model M clip.mp4 -o clip.latent.safetensors   (or x.safetensors)
//   vvae decode      --model M clip.latent.safetensors -o clip_rec.mp4
//   vvae reconstruct --model M clip.mp4 [more clips | --manifest data.csv] -o out/
//   vvae convert     clip.mp4 -o x.safetensors | x.safetensors -o clip.mp4
//   vvae info        --model M [--input-shape B,C,T,H,W]
//   vvae compare     A.safetensors B.safetensors
#include <iostream>

#include "cli_common.hpp"
#include "commands.hpp"

int main(int argc, char** argv) {
  using namespace vvae::cli;
  CLI::App app{"vvae " + vvae::version() +
               ": video autoencoders (Open-Sora's 2D AE, HunyuanVideo VAE, Video DC-AE) in C++"};
  app.set_version_flag("--version", vvae::version());
  app.require_subcommand(1);
  add_encode_command(app);
  add_decode_command(app);
  add_reconstruct_command(app);
  add_convert_command(app);
  add_info_command(app);
  add_compare_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ExitStatus& e) {
    return e.code;
  } catch (const std::exception& e) {
    std::cerr << "vvae: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
