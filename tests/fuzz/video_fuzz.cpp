// libFuzzer harness: a video or image file through vvae's reader (FFmpeg's demuxers and decoders
// behind it): the probe, then up to 8 frames decoded and converted to RGB.
#include <vector>

#include "fuzz_input.hpp"
#include "vvae/video.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const vvae::fuzz::InputFile input(data, size);
  vvae::fuzz::refuse_or_pass([&] {
    vvae::VideoReader reader(input.path());
    const vvae::VideoInfo& info = reader.info();
    std::vector<uint8_t> rgb(static_cast<size_t>(info.width * info.height * 3));
    for (int frame = 0; frame < 8 && reader.next(rgb.data()); ++frame) {
    }
  });
  return 0;
}
