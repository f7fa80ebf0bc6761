#pragma once
// The clip a command codes, opened once for encode --manifest and reconstruct: a tensor file
// is read whole; a video is streamed (its frames decoded as the model's tiles ask for them,
// vvae/clip.hpp's ClipReader), so a long clip holds a tile's worth of frames.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "vvae/clip.hpp"
#include "vvae/model.hpp"

namespace vvae {

struct ClipSource {
  Clip clip;                         // notes, warnings, geometry; x only for a tensor file
  std::optional<ClipReader> reader;  // a video's

  bool whole() const { return !reader; }
  ClipIo io() const { return whole() ? ClipIo::kWhole : ClipIo::kStreamed; }
  Shape shape() const { return whole() ? clip.x.shape() : reader->shape(); }
  // Frames [begin, end), asked in order (Model::encode_streamed); the source must outlive it.
  FrameReader frames();
};

ClipSource open_clip_source(const std::string& path, const ClipOptions& options,
                            const ShapeRules& rules);

// What a clip's coded numbers depend on besides its source: the model's config, the compute
// mode, the frames and size chosen, and the posterior draw. The base of the latent cache's key
// and of reconstruct's run key (each adds its own fields).
nlohmann::json coding_settings_json(const ModelInfo& info, const ComputeOptions& compute,
                                    const ClipOptions& clip, const EncodeOptions& encode);

// Frames [begin, end) of a (B, C, T, H, W) clip tensor (the tensor itself when that is all).
Tensor frames_of_clip(const Tensor& x, int64_t begin, int64_t end);

}  // namespace vvae
