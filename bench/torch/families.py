"""Registry of the benchmark's PyTorch model definitions: builders, golden checks, presets."""
import ae2d


def check_ae2d(model, io):
    z, mean, logvar, moments = model.encode(io["x"])
    errs = {"moments": (moments, io["moments"]), "mean": (mean, io["mean"]), "logvar": (logvar, io["logvar"]),
            "z": (z, io["z"]), "dec": (model.decode(io["z"]), io["dec"])}
    return {k: float((a - b).abs().max() / b.abs().max()) for k, (a, b) in errs.items()}


BUILDERS = {"ae2d": ae2d.build}
CHECKS = {"ae2d": check_ae2d}
PRESETS = {"flux-ae": ("ae2d", ae2d.FLUX_AE)}

# Latent channels and compression (time, space) per preset, to make a decode input directly.
LATENTS = {"flux-ae": (16, 1, 8)}


def latent_like(preset, clip):
    import torch
    c, t, s = LATENTS[preset]
    frames = clip[2] if t == 1 else (clip[2] - 1) // t + 1
    return torch.randn(clip[0], c, frames, clip[3] // s, clip[4] // s)
