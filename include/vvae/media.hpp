#pragma once
// vvae's media API (the vvae::media library, FFmpeg): videos and images in and out, clips made
// as Open-Sora's loader makes them, latent files with their metadata, reconstruction with
// PSNR/SSIM, manifests and shards, and the helpers that keep users' files safe.

#include "vvae/clip.hpp"          // load_clip, tensor_to_rgb, ...
#include "vvae/files.hpp"         // InputFiles, write_text_file
#include "vvae/latent.hpp"        // read_latent_file, write_latent_file, latent_metadata
#include "vvae/latent_cache.hpp"  // encode_manifest: a dataset into a latent cache
#include "vvae/manifest.hpp"      // read_manifest, shards
#include "vvae/metrics.hpp"       // PSNR, SSIM, latent statistics
#include "vvae/reconstruct.hpp"   // reconstruct_clip, summaries
#include "vvae/video.hpp"         // VideoReader, write_video, write_png, frame sets
