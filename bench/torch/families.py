"""Registry of the benchmark's PyTorch model definitions: builders, golden checks, presets."""
import ae2d
import dcae
import hunyuan


def check_ae2d(model, io):
    z, mean, logvar, moments = model.encode(io["x"])
    errs = {"moments": (moments, io["moments"]), "mean": (mean, io["mean"]), "logvar": (logvar, io["logvar"]),
            "z": (z, io["z"]), "dec": (model.decode(io["z"]), io["dec"])}
    return {k: float((a - b).abs().max() / b.abs().max()) for k, (a, b) in errs.items()}


def check_hunyuan(model, io):
    out = {}
    if "moments_untiled" in io:  # tiled cases: the untiled tensors are what this definition computes
        z, mean, logvar, moments = model.encode(io["x"])
        out["moments_untiled"] = (moments, io["moments_untiled"])
        out["z_untiled"] = (z, io["z_untiled"])
        out["dec_untiled"] = (model.decode(io["z_untiled"]), io["dec_untiled"])
    else:
        z, mean, logvar, moments = model.encode(io["x"])
        out.update(moments=(moments, io["moments"]), mean=(mean, io["mean"]), logvar=(logvar, io["logvar"]),
                   z=(z, io["z"]), dec=(model.decode(io["z"]), io["dec"]))
        z1, _, _, m1 = model.encode(io["x_t1"])
        out.update(moments_t1=(m1, io["moments_t1"]), z_t1=(z1, io["z_t1"]), dec_t1=(model.decode(io["z_t1"]), io["dec_t1"]))
    return {k: float((a - b).abs().max() / b.abs().max()) for k, (a, b) in out.items()}


def check_dcae(model, io):
    out = {}
    suffix = "_untiled" if "z_untiled" in io else ""
    out["z" + suffix] = (model.encode(io["x"]), io["z" + suffix])
    out["dec" + suffix] = (model.decode(io["z" + suffix]), io["dec" + suffix])
    if "x_t1" in io:
        out["z_t1"] = (model.encode(io["x_t1"]), io["z_t1"])
        out["dec_t1"] = (model.decode(io["z_t1"]), io["dec_t1"])
    return {k: float((a - b).abs().max() / b.abs().max()) for k, (a, b) in out.items()}


BUILDERS = {"ae2d": ae2d.build, "hunyuan": hunyuan.build, "dcae": dcae.build}
CHECKS = {"ae2d": check_ae2d, "hunyuan": check_hunyuan, "dcae": check_dcae}
PRESETS = {"flux-ae": ("ae2d", ae2d.FLUX_AE), "hunyuan-vae": ("hunyuan", hunyuan.HUNYUAN_VAE),
           "dc-ae-f32t4c128": ("dcae", dcae.DC_AE_F32T4C128)}

# Latent channels and compression (time, space) per preset, to make a decode input directly.
LATENTS = {"flux-ae": (16, 1, 8), "hunyuan-vae": (16, 4, 8), "dc-ae-f32t4c128": (128, 4, 32)}


def latent_like(preset, clip):
    import torch
    c, t, s = LATENTS[preset]
    causal = preset == "hunyuan-vae"
    frames = clip[2] if t == 1 else ((clip[2] - 1) // t + 1 if causal else clip[2] // t)
    return torch.randn(clip[0], c, frames, clip[3] // s, clip[4] // s)
