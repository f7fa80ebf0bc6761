// libFuzzer harness: a safetensors file through SafetensorsFile (header, offsets, dtypes) and the
// load of every tensor it lists, as float32.
#include "fuzz_input.hpp"
#include "vvae/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const vvae::fuzz::InputFile input(data, size);
  vvae::fuzz::refuse_or_pass([&] {
    const vvae::SafetensorsFile file = vvae::SafetensorsFile::open(input.path());
    for (const auto& entry : file.entries()) {
      const vvae::Tensor t = file.load(entry.name);
      if (t.numel() > 0 && t.data() == nullptr) std::abort();  // a tensor must hold its data
    }
  });
  return 0;
}
