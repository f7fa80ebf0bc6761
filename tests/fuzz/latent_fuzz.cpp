// libFuzzer harness: a latent file (what `vvae decode` reads) through read_latent_file, then the
// metadata readers that decode and the cache apply to it.
#include "fuzz_input.hpp"
#include "vvae/latent.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const vvae::fuzz::InputFile input(data, size);
  vvae::fuzz::refuse_or_pass([&] {
    const vvae::LatentFile latent = vvae::read_latent_file(input.path());
    (void)vvae::metadata_fps(latent.metadata);
  });
  return 0;
}
