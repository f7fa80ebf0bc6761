#pragma once
// Latent files: what `vvae encode` writes for a clip and `vvae decode` reads back. A safetensors
// file with z and, for variational families, mean and logvar, all float32 (B, C, T', H', W'),
// and string metadata: the model (family, preset, model_args, config_hash, scale and shift
// factors), the clip it came from (source, frames, frame_indices, fps, size, resize_crop, ...),
// input_shape, sampled (and seed), vvae_version. The README's "Latent files" lists every key.

#include <string>

#include "vvae/clip.hpp"
#include "vvae/model.hpp"
#include "vvae/safetensors.hpp"

namespace vvae {

// FNV-1a 64 of the model's family and resolved config JSON, "fnv1a64:0123456789abcdef".
std::string config_hash(const ModelInfo& info);
// Metadata of a latent or decoded file: vvae version, family, preset, model_args, config_hash,
// and the config's scale/shift factors where it has them.
Metadata model_metadata(const ModelInfo& info);
// What a latent file records about the clip it came from.
void add_clip_metadata(Metadata& meta, const Clip& clip);
// A latent's metadata: model_metadata, the clip's when it was encoded from one, the input
// shape, and whether z was drawn from the posterior (with which seed).
Metadata latent_metadata(const ModelInfo& info, const Shape& input, const EncodeOptions& encode,
                         const Clip* clip = nullptr);

// The frame rate a latent's metadata records (0 when none).
double metadata_fps(const Metadata& meta);
// A warning when `meta` says the latent came from another family or config than `info`; "" if
// it matches or does not say.
std::string model_mismatch(const Metadata& meta, const ModelInfo& info);

struct LatentFile {
  Tensor z;
  Tensor mean, logvar;  // undefined when the file has none (a deterministic family's)
  Metadata metadata;
};

// Writes z, and mean and logvar when they are defined, with `metadata`; the file appears at
// `path` only once complete.
void write_latent_file(const std::string& path, const EncodeResult& latent,
                       const Metadata& metadata);
// Reads tensor `name` as z (by default "z", or the file's only tensor), mean and logvar when the
// file holds them, and the metadata.
LatentFile read_latent_file(const std::string& path, const std::string& name = "");

}  // namespace vvae
