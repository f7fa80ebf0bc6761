// libFuzzer harness: a model's config.json through Model::load without weights (the family's
// config parser, its limits, the architecture built as shapes), then the plans of an encode and
// of the decode of its latent for a small clip (shape arithmetic, tiling, no computation).
#include "fuzz_input.hpp"
#include "vvae/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const vvae::fuzz::InputFile input(data, size);
  vvae::fuzz::refuse_or_pass([&] {
    vvae::LoadOptions options;
    options.config = input.path();
    options.without_weights = true;
    const vvae::Model model = vvae::Model::load(options);
    const vvae::RunPlan encode = model.plan_encode({1, 3, 9, 64, 64});
    (void)model.plan_decode(encode.output);
  });
  return 0;
}
