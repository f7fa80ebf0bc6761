"""vvae: video autoencoders (Open-Sora's Flux-style 2D AE, HunyuanVideo's causal 3D VAE and the
Video DC-AE) on the CPU, with diffusers' interface.

    import torch, vvae
    vae = vvae.AutoencoderKLHunyuanVideo.from_pretrained("path/to/diffusers/vae")
    posterior = vae.encode(x).latent_dist          # x: (B, 3, T, H, W) float32 in [-1, 1]
    z = posterior.sample(generator=torch.Generator().manual_seed(0))
    x_rec = vae.decode(z).sample

Logging goes to the "vvae" logger (logging.getLogger("vvae")): load warnings, what a video
read did to the frames, outputs holding NaN or infinity.
"""

import logging as _logging

from . import _vvae
from ._vvae import Cancelled, Error, ModelInfo, RunPlan, kernel_report, num_threads, \
    preset_names, set_num_threads
from .media import clip_metrics, load_latent, read_video, reconstruct, save_latent, write_video
from .models import (AutoencoderDCVideo, AutoencoderKL, AutoencoderKLHunyuanVideo,
                     AutoencoderKLOutput, Config, DecoderOutput, DiagonalGaussianDistribution,
                     EncoderOutput, from_pretrained)

_logging.getLogger("vvae").addHandler(_logging.NullHandler())

__version__ = _vvae.version()

__all__ = [
    "AutoencoderDCVideo", "AutoencoderKL", "AutoencoderKLHunyuanVideo", "AutoencoderKLOutput",
    "Cancelled", "Config", "DecoderOutput", "DiagonalGaussianDistribution", "EncoderOutput",
    "Error", "ModelInfo", "RunPlan", "clip_metrics", "from_pretrained", "kernel_report",
    "load_latent", "num_threads", "preset_names", "read_video", "reconstruct", "save_latent",
    "set_num_threads", "write_video",
]
