// vvae_make_video OUT [--codec C] [--pix-fmt F] [--format MUXER] [--frames T] [--size HxW]
//                     [--fps F] [--pattern index|moving] [--alpha] [--still]
// Makes a small test video (or image with --still) for the shell tests.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "video_maker.hpp"

int main(int argc, char** argv) {
  using namespace vvae::test;
  if (argc < 2) {
    std::fprintf(stderr, "usage: vvae_make_video OUT [options]\n");
    return 2;
  }
  std::string out = argv[1], pattern = "moving";
  MakeVideo o;
  long long t = 9, h = 32, w = 48;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) std::exit(2);
      return argv[++i];
    };
    if (a == "--codec")
      o.codec = value();
    else if (a == "--pix-fmt")
      o.pix_fmt = value();
    else if (a == "--format")
      o.format = value();
    else if (a == "--frames")
      t = std::atoll(value().c_str());
    else if (a == "--size")
      std::sscanf(value().c_str(), "%lldx%lld", &h, &w);
    else if (a == "--fps")
      o.fps = std::atof(value().c_str());
    else if (a == "--pattern")
      pattern = value();
    else if (a == "--alpha")
      o.alpha = true;
    else if (a == "--still")
      o.still = true;
    else {
      std::fprintf(stderr, "vvae_make_video: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  try {
    const auto frames = pattern == "index" ? index_frames(t, h, w) : moving_frames(t, h, w);
    make_video(out, frames, o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vvae_make_video: %s\n", e.what());
    return 1;
  }
  return 0;
}
