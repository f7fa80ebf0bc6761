#include "media/clip_source.hpp"

#include <cstring>

#include "vvae/latent.hpp"
#include "vvae/safetensors.hpp"

namespace vvae {

ClipSource open_clip_source(const std::string& path, const ClipOptions& options,
                            const ShapeRules& rules) {
  ClipSource s;
  if (is_tensor_file(path)) {
    s.clip = clip_from_tensor(path);
    if (options.any_set())
      s.clip.notes.push_back("a tensor input: frame and size options do not apply");
  } else {
    s.reader.emplace(path, options, rules);
    s.clip = s.reader->clip();
  }
  return s;
}

FrameReader ClipSource::frames() {
  if (reader) return reader->frames();
  return [this](int64_t begin, int64_t end) { return frames_of_clip(clip.x, begin, end); };
}

Tensor frames_of_clip(const Tensor& x, int64_t begin, int64_t end) {
  if (begin == 0 && end == x.dim(2)) return x;
  const int64_t frames = x.dim(2), plane = x.dim(3) * x.dim(4), n = end - begin;
  Tensor part = Tensor::empty({x.dim(0), x.dim(1), n, x.dim(3), x.dim(4)});
  for (int64_t c = 0; c < x.dim(0) * x.dim(1); ++c)
    std::memcpy(part.data() + c * n * plane, x.data() + (c * frames + begin) * plane,
                static_cast<size_t>(n * plane) * sizeof(float));
  return part;
}

nlohmann::json coding_settings_json(const ModelInfo& info, const ComputeOptions& compute,
                                    const ClipOptions& clip, const EncodeOptions& encode) {
  return {{"config", config_hash(info)},
          {"precision", compute.precision == Precision::kBf16 ? "bf16" : "fp32"},
          {"conv_algo", conv_algorithm_name(compute.conv_algorithm)},
          {"num_frames", clip.frames.num_frames},
          {"frame_interval", clip.frames.frame_interval},
          {"fps_max", clip.frames.fps_max},
          {"resolution", clip.resolution},
          {"size", {clip.height, clip.width}},
          {"sample", encode.sample},
          {"seed", encode.sample ? encode.seed : 0}};
}

}  // namespace vvae
