// vvae: encode clips to latents, decode latents to clips, reconstruct videos, describe models.
//
//   vvae encode      --model M clip.mp4 -o clip.latent.safetensors   (or x.safetensors)
//   vvae decode      --model M clip.latent.safetensors -o clip_rec.mp4
//   vvae reconstruct --model M clip.mp4 [more clips | --manifest data.csv] -o out/
//   vvae convert     clip.mp4 -o x.safetensors | x.safetensors -o clip.mp4
//   vvae info        --model M [--input-shape B,C,T,H,W]
//   vvae compare     A.safetensors B.safetensors
#include <algorithm>
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
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // CLI11's message, as one vvae error line, pointing at the command's help.
    std::string message = e.what();
    std::replace(message.begin(), message.end(), '\n', ' ');
    std::string help = "vvae --help";
    for (const CLI::App* sub : app.get_subcommands()) help = "vvae " + sub->get_name() + " --help";
    std::cerr << "vvae: error: " << message << " (see " << help << ")\n";
    return e.get_exit_code();
  } catch (const ExitStatus& e) {
    return e.code;
  } catch (const std::exception& e) {
    std::cerr << "vvae: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
