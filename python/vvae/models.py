"""The autoencoders, in diffusers' shape.

`vae.encode(x).latent_dist` is the raw posterior (mean, logvar: unscaled, as diffusers), and
`vae.decode(z).sample` takes unscaled latents: the caller scales, as diffusers' pipelines do
(`(z - vae.config.shift_factor) * vae.config.scaling_factor`). Beside it, Open-Sora's
convention, which vvae's command line uses: `vae.encode_latent(x)` returns the scaled z that
Open-Sora's `encode` returns, and `vae.decode_latent(z)` takes it back.

Every call converts nothing: the input is read in place and the outputs are arrays over vvae's
memory, NumPy for NumPy inputs and torch for torch inputs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from . import _vvae
from ._arrays import add_time, check_array, drop_time, is_torch, like, warn_non_finite

logger = logging.getLogger("vvae")

Progress = Optional[Callable[[int, int], Any]]


class Config(dict):
    """A model's config: a dict whose keys also read as attributes (`vae.config.scaling_factor`)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class AutoencoderKLOutput:
    latent_dist: "DiagonalGaussianDistribution"


@dataclass
class EncoderOutput:
    latent: Any


@dataclass
class DecoderOutput:
    sample: Any


class DiagonalGaussianDistribution:
    """diffusers' posterior: mean and logvar (clamped to [-30, 20]), unscaled."""

    def __init__(self, mean, logvar, parameters=None, time_axis: bool = True):
        self.mean = mean
        self.logvar = logvar
        self.parameters = parameters  # the encoder's raw moments [mean | logvar], unclamped
        self._time_axis = time_axis  # False: 4-D image latents, viewed from the engine's 5-D

    @property
    def std(self):
        return _exp(self.logvar, 0.5)

    @property
    def var(self):
        return _exp(self.logvar, 1.0)

    def mode(self):
        return self.mean

    def sample(self, generator=None):
        """mean + std * eps.

        generator: a torch.Generator (eps = torch.randn(..., generator=generator), diffusers'
        draw), a numpy.random.Generator, None (torch's global generator, as diffusers, or NumPy's
        without torch), or an int seed: vvae's own counter-based generator, the draw of
        `encode_latent(x, sample=True, seed=...)` and the CLI's `--sample --seed` before scaling,
        the same for any thread count.
        """
        if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
            if generator < 0:
                raise ValueError("a seed must be >= 0")
            mean, logvar = self.mean, self.logvar
            if not self._time_axis:
                mean, logvar = add_time(mean), add_time(logvar)
            draw = _vvae.sample_posterior(mean, logvar, int(generator))
            return draw if self._time_axis else drop_time(draw)
        eps = _normal(self.mean, generator)
        return self.mean + self.std * eps

    def kl(self):
        """0.5 * sum(mean^2 + var - 1 - logvar) over every non-batch axis, per sample."""
        terms = self.mean**2 + self.var - 1.0 - self.logvar
        axes = tuple(range(1, terms.ndim))
        return 0.5 * (terms.sum(dim=axes) if is_torch(terms) else terms.sum(axis=axes))


def _exp(logvar, factor):
    if is_torch(logvar):
        import torch

        return torch.exp(factor * logvar)
    return np.exp(np.float32(factor) * logvar)


def _normal(mean, generator):
    shape = tuple(mean.shape)
    if generator is None or type(generator).__module__.startswith("torch"):
        try:
            import torch
        except ImportError:
            if generator is not None:
                raise
            eps = np.random.default_rng().standard_normal(shape, dtype=np.float32)
            return like(eps, mean)
        eps = torch.randn(shape, generator=generator, dtype=torch.float32)
        return like(eps, mean)
    if isinstance(generator, np.random.Generator):
        return like(generator.standard_normal(shape, dtype=np.float32), mean)
    raise TypeError(
        "generator must be a torch.Generator, a numpy.random.Generator, an int seed or None, "
        f"got {type(generator).__name__}"
    )


# The model_args keys of each family's tiling (the engine's TilingKeys) and the family's
# defaults for a config that leaves them out (upstream's config classes'). The 2D AE's tiles are
# vvae's own (Open-Sora's 2D AE does not tile; diffusers' AutoencoderKL tiles the same way), and
# it has no temporal tiles: it codes frame by frame.
_TILING_KEYS = {
    "ae2d": ("vvae_spatial_tiling", None, "vvae_tile_size", None, "vvae_tile_overlap"),
    "hunyuan": ("use_spatial_tiling", "use_temporal_tiling", "sample_size", "sample_tsize",
                "tile_overlap_factor"),
    "dcae": ("use_spatial_tiling", "use_temporal_tiling", "spatial_tile_size",
             "temporal_tile_size", "tile_overlap_factor"),
}
_TILING_DEFAULTS = {"ae2d": (False, False, 256, 1, 0.25), "hunyuan": (False, False, 256, 64, 0.25),
                    "dcae": (False, False, 256, 32, 0.25)}

# from_pretrained arguments of diffusers that change nothing for a local folder.
_IGNORED_LOAD_ARGS = {"cache_dir", "local_files_only", "revision", "use_safetensors",
                      "low_cpu_mem_usage", "force_download", "token", "device_map"}


@dataclass(frozen=True)
class _Tiling:
    """Open-Sora's tiling settings (the family's model_args), per direction for the temporal."""

    spatial: bool
    temporal_encode: bool
    temporal_decode: bool
    tile_size: int
    tile_frames: int
    overlap: float


class _Autoencoder:
    """What the three families share: loading, the engine's calls, tiling, the config."""

    _family = ""
    _accepts_images = False  # 4-D (B, C, H, W) input as one frame, as diffusers' image models

    def __init__(self, model: "_vvae.Model", load_args: dict, source_config: Optional[dict]):
        if model.info.family != self._family:
            raise ValueError(
                f"{load_args.get('model') or load_args.get('config')!r} is a {model.info.family} "
                f"model; load it with vvae.{_CLASS_OF_FAMILY[model.info.family]}"
            )
        self._load_args = load_args
        self._base = model  # the model of a family without tiling (else kept in _models)
        self._models = {}
        # What the last encode or decode under max_memory ran (one line), None without a cap.
        self.last_plan = None
        self.info = model.info
        self.model_args = json.loads(model.info.config_json)
        keys = _TILING_KEYS.get(self._family)
        self._tiling = None
        if keys is not None:
            v = [self.model_args.get(k, d) if k else d
                 for k, d in zip(keys, _TILING_DEFAULTS[self._family])]
            self._tiling = _Tiling(bool(v[0]), bool(v[1]), bool(v[1]), int(v[2]), int(v[3]),
                                   float(v[4]))
            self._models[self._tiling_args(self._tiling, "encode")] = model
            self._models[self._tiling_args(self._tiling, "decode")] = model
            self._base = None  # so that a change of tiling releases it
        self.config = self._make_config(source_config)
        unused = model.info.warnings  # the checkpoint tensors the model does not use
        if unused:
            logger.warning("the checkpoint has %d tensors the model does not use (loaded "
                           "non-strictly, as upstream): %s", len(unused),
                           ", ".join(unused[:8]) + (" ..." if len(unused) > 8 else ""))

    # --- loading -----------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, weights: Optional[str] = None, *,
                        subfolder: Optional[str] = None, config: Optional[str] = None,
                        preset: Optional[str] = None, strict: bool = False,
                        model_args: Optional[dict] = None, precision: str = "fp32",
                        conv_algorithm: str = "auto", variant: Optional[str] = None,
                        torch_dtype=None, **kwargs):
        """Loads a model folder (vvae's config.json + weights.safetensors, or a diffusers folder:
        config.json + diffusion_pytorch_model.safetensors), a preset name (`flux-ae`,
        `hunyuan-vae`, `dc-ae-f32t4c128`) with `weights`, or a bare .safetensors checkpoint.

        model_args: settings over the config's (values: Python values or JSON text).
        precision: "fp32" or "bf16" (outputs are float32 either way); conv_algorithm: "auto",
        "winograd" or "direct". Hub names are not fetched: give a local path.
        """
        unknown = set(kwargs) - _IGNORED_LOAD_ARGS
        if unknown:
            raise TypeError(f"from_pretrained() got unexpected arguments {sorted(unknown)}")
        if torch_dtype is not None and "float32" not in str(torch_dtype):
            raise ValueError(
                f"torch_dtype={torch_dtype}: vvae's outputs are float32; for bfloat16 compute "
                "pass precision='bf16'"
            )
        path = os.fspath(pretrained_model_name_or_path)
        if subfolder:
            path = os.path.join(path, subfolder)
        if variant and weights is None and os.path.isdir(path):
            weights = os.path.join(path, f"diffusion_pytorch_model.{variant}.safetensors")
        is_preset = path in _vvae.preset_names()
        if not is_preset and not os.path.exists(path):
            raise FileNotFoundError(
                f"{path!r} is neither a local model folder, a checkpoint nor a preset "
                f"({', '.join(_vvae.preset_names())}); vvae does not download models"
            )
        load_args = dict(model=path, weights=os.fspath(weights) if weights else "",
                         config=os.fspath(config) if config else "", preset=preset or "",
                         strict=strict, model_args=_json_args(model_args or {}),
                         precision=precision, conv_algorithm=conv_algorithm)
        model = _vvae.Model.load(**load_args)
        source = None
        config_path = config or (os.path.join(path, "config.json") if os.path.isdir(path) else None)
        if config_path and os.path.isfile(config_path):
            with open(config_path, encoding="utf-8") as f:
                source = json.load(f)
        return cls(model, load_args, source)

    def _make_config(self, source: Optional[dict]) -> Config:
        info = self.info
        c = Config(source if source and "_class_name" in source else {})
        c.setdefault("in_channels", info.in_channels)
        c.setdefault("latent_channels", info.latent_channels)
        c["scaling_factor"] = info.scale_factor
        c["shift_factor"] = info.shift_factor
        c["spatial_compression_ratio"] = info.spatial_ratio
        c["temporal_compression_ratio"] = info.time_ratio
        c["family"] = info.family
        c["preset"] = info.preset
        c["model_args"] = self.model_args
        return c

    # --- the engine ----------------------------------------------------------------------------

    def _tiling_args(self, t: "_Tiling", direction: str) -> tuple:
        keys = _TILING_KEYS[self._family]
        temporal = t.temporal_encode if direction == "encode" else t.temporal_decode
        values = (t.spatial, temporal, t.tile_size, t.tile_frames, t.overlap)
        return tuple((k, v) for k, v in zip(keys, values) if k is not None)

    def _model(self, direction: str) -> "_vvae.Model":
        """The engine's model for the current tiling (tiling is part of a model's config)."""
        if self._tiling is None:
            return self._base
        key = self._tiling_args(self._tiling, direction)
        model = self._models.get(key)
        if model is None:
            args = dict(self._load_args)
            args["model_args"] = {**args["model_args"], **_json_args(dict(key))}
            model = _vvae.Model.load(**args)
            self._models = {k: m for k, m in self._models.items()
                            if k in (self._tiling_args(self._tiling, "encode"),
                                     self._tiling_args(self._tiling, "decode"))}
            self._models[key] = model
        return model

    def _input(self, x, name):
        ranks = (4, 5) if self._accepts_images else (5,)
        x = check_array(x, name, ranks)
        return (add_time(x), True) if x.ndim == 4 else (x, False)

    def _encode(self, x, *, sample=False, seed=0, unscaled, progress, max_memory=None):
        x, image = self._input(x, "x")
        out = self._model("encode").encode(x, sample=sample, seed=seed, unscaled=unscaled,
                                           progress=progress, max_memory=max_memory)
        self.last_plan = out.pop("plan")
        warn_non_finite(out["z"], "the latent")
        if image:
            out = {k: drop_time(v) for k, v in out.items()}
        return out, image

    def _decode(self, z, *, unscaled, progress, max_memory=None):
        z, image = self._input(z, "z")
        x, self.last_plan = self._model("decode").decode(
            z, unscaled=unscaled, progress=progress, max_memory=max_memory, with_plan=True)
        warn_non_finite(x, "the decoded clip")
        return drop_time(x) if image else x

    # --- Open-Sora's convention ----------------------------------------------------------------

    def encode_latent(self, x, sample: bool = False, seed: int = 0, progress: Progress = None,
                      max_memory=None):
        """The scaled latent Open-Sora's encode returns (and `vvae encode` writes): for the
        Gaussian families scale * (mode or draw - shift), with `sample` drawing from `seed`.

        max_memory (bytes, or a size such as "8G") caps the process's resident memory: when the
        configured plan does not fit, the tiling that does runs (`last_plan` says which), and a
        ValueError names the smallest cap when none fits."""
        if sample and not self.info.variational:
            raise ValueError(f"the {self._family} family has no posterior to sample from")
        out, _ = self._encode(x, sample=sample, seed=seed, unscaled=False, progress=progress,
                              max_memory=max_memory)
        return out["z"]

    def decode_latent(self, z, progress: Progress = None, max_memory=None):
        """Decodes a scaled latent (what encode_latent returns); max_memory as encode_latent."""
        return self._decode(z, unscaled=False, progress=progress, max_memory=max_memory)

    # --- shapes and plans ----------------------------------------------------------------------

    def encoded_shape(self, shape) -> tuple:
        return self._model("encode").encoded_shape(list(shape))

    def decoded_shape(self, shape) -> tuple:
        return self._model("decode").decoded_shape(list(shape))

    def plan_encode(self, shape):
        return self._model("encode").plan_encode(list(shape))

    def plan_decode(self, shape):
        return self._model("decode").plan_decode(list(shape))

    # --- tiling (Open-Sora's terms) ------------------------------------------------------------

    def set_tiling(self, spatial: Optional[bool] = None, temporal: Optional[bool] = None,
                   tile_size: Optional[int] = None, tile_frames: Optional[int] = None,
                   overlap: Optional[float] = None) -> None:
        """Open-Sora's tiling: spatial tiles of tile_size pixels, temporal tiles of tile_frames
        frames, overlapping by the fraction `overlap`; unset arguments keep their value."""
        if self._tiling is None:
            raise ValueError(f"the {self._family} family does not tile (nor does upstream)")
        if _TILING_KEYS[self._family][1] is None and (temporal or tile_frames is not None):
            raise ValueError(f"the {self._family} family codes frame by frame and has no "
                             "temporal tiles: temporal and tile_frames do not apply")
        t = self._tiling
        self._tiling = _Tiling(
            t.spatial if spatial is None else bool(spatial),
            t.temporal_encode if temporal is None else bool(temporal),
            t.temporal_decode if temporal is None else bool(temporal),
            t.tile_size if tile_size is None else int(tile_size),
            t.tile_frames if tile_frames is None else int(tile_frames),
            t.overlap if overlap is None else float(overlap),
        )

    @property
    def tiling(self) -> Optional[dict]:
        """The tiling that runs now, in Open-Sora's terms (None for a family that does not tile)."""
        return None if self._tiling is None else dataclasses.asdict(self._tiling)

    @property
    def dtype(self):
        try:
            import torch

            return torch.float32
        except ImportError:
            return np.float32

    @property
    def device(self):
        try:
            import torch

            return torch.device("cpu")
        except ImportError:
            return "cpu"

    def eval(self):
        return self  # inference only; for code that calls it as on a torch module

    def to(self, *args, **kwargs):
        """Accepts .to("cpu") / .to(torch.float32) as diffusers code calls it; vvae runs there."""
        for a in list(args) + list(kwargs.values()):
            text = str(a)
            if text not in ("cpu", "torch.float32", "float32") and not text.startswith("cpu"):
                raise ValueError(f"vvae runs float32 on the CPU; cannot move to {a}")
        return self

    def __repr__(self):
        preset = f", preset={self.info.preset!r}" if self.info.preset else ""
        return (f"vvae.{type(self).__name__}(family={self._family!r}{preset}, "
                f"latent_channels={self.info.latent_channels}, "
                f"parameters={self.info.parameter_count})")


class _GaussianAutoencoder(_Autoencoder):
    def encode(self, x, return_dict: bool = True, progress: Progress = None, max_memory=None):
        """diffusers' encode: the raw posterior (unscaled); max_memory as encode_latent."""
        out, image = self._encode(x, unscaled=True, progress=progress, max_memory=max_memory)
        dist = DiagonalGaussianDistribution(out["mean"], out["logvar"], out["moments"],
                                            time_axis=not image)
        return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

    def decode(self, z, return_dict: bool = True, generator=None, progress: Progress = None,
               max_memory=None):
        """diffusers' decode: z unscaled (the caller undoes its scaling first); max_memory as
        encode_latent."""
        x = self._decode(z, unscaled=True, progress=progress, max_memory=max_memory)
        return DecoderOutput(sample=x) if return_dict else (x,)

    def forward(self, sample, sample_posterior: bool = False, return_dict: bool = True,
                generator=None):
        posterior = self.encode(sample).latent_dist
        z = posterior.sample(generator=generator) if sample_posterior else posterior.mode()
        return self.decode(z, return_dict=return_dict)

    __call__ = forward

    # diffusers' spatial tiling switch and slicing, shared by both Gaussian classes.
    def disable_tiling(self) -> None:
        self.set_tiling(spatial=False)

    @property
    def use_tiling(self) -> bool:
        return self._tiling.spatial

    @use_tiling.setter
    def use_tiling(self, on: bool) -> None:
        self.set_tiling(spatial=on)

    def enable_slicing(self) -> None:
        pass  # vvae always codes one sample (the 2D AE: one frame) at a time

    def disable_slicing(self) -> None:
        pass


class AutoencoderKL(_GaussianAutoencoder):
    """The Flux-style 2D AutoEncoder (family ae2d) as diffusers' AutoencoderKL: images
    (B, C, H, W) or videos (B, C, T, H, W), every frame coded on its own.

    Tiling is diffusers' AutoencoderKL's (Open-Sora's 2D AE has none): off until
    enable_tiling(), then frames larger than tile_sample_min_size (a diffusers folder's
    sample_size, else 256) are coded in tiles overlapping by tile_overlap_factor, blended."""

    _family = "ae2d"
    _accepts_images = True

    def enable_tiling(self, use_tiling: bool = True) -> None:
        self.set_tiling(spatial=use_tiling)

    @property
    def tile_sample_min_size(self) -> int:
        return self._tiling.tile_size

    @tile_sample_min_size.setter
    def tile_sample_min_size(self, size: int) -> None:
        self.set_tiling(tile_size=size)

    @property
    def tile_latent_min_size(self) -> int:
        return self._tiling.tile_size // self.info.spatial_ratio

    @property
    def tile_overlap_factor(self) -> float:
        return self._tiling.overlap

    @tile_overlap_factor.setter
    def tile_overlap_factor(self, overlap: float) -> None:
        self.set_tiling(overlap=overlap)


class AutoencoderKLHunyuanVideo(_GaussianAutoencoder):
    """HunyuanVideo's causal 3D VAE (family hunyuan) as diffusers' AutoencoderKLHunyuanVideo.

    Tiling follows diffusers' attributes (use_tiling, use_framewise_encoding/decoding,
    tile_sample_min_* and tile_sample_stride_*), which map onto Open-Sora's scheme that vvae
    runs; settings that scheme cannot express are refused. A diffusers folder starts as
    diffusers does (spatial tiling off, framewise coding of 16-frame tiles at a stride of 12); a
    preset or Open-Sora config starts with its own tiling.
    """

    _family = "hunyuan"

    def enable_tiling(self, tile_sample_min_height: Optional[int] = None,
                      tile_sample_min_width: Optional[int] = None,
                      tile_sample_min_num_frames: Optional[int] = None,
                      tile_sample_stride_height: Optional[int] = None,
                      tile_sample_stride_width: Optional[int] = None,
                      tile_sample_stride_num_frames: Optional[int] = None) -> None:
        d = self._diffusers_tiling()
        new = dict(
            height=tile_sample_min_height or d["height"],
            width=tile_sample_min_width or d["width"],
            frames=tile_sample_min_num_frames or d["frames"],
            stride_height=tile_sample_stride_height or d["stride_height"],
            stride_width=tile_sample_stride_width or d["stride_width"],
            stride_frames=tile_sample_stride_num_frames or d["stride_frames"],
        )
        self._set_diffusers_tiling(spatial=True, **new)


    @property
    def use_framewise_encoding(self) -> bool:
        return self._tiling.temporal_encode

    @use_framewise_encoding.setter
    def use_framewise_encoding(self, on: bool) -> None:
        t = self._tiling
        self._tiling = _Tiling(t.spatial, bool(on), t.temporal_decode, t.tile_size, t.tile_frames,
                               t.overlap)

    @property
    def use_framewise_decoding(self) -> bool:
        return self._tiling.temporal_decode

    @use_framewise_decoding.setter
    def use_framewise_decoding(self, on: bool) -> None:
        t = self._tiling
        self._tiling = _Tiling(t.spatial, t.temporal_encode, bool(on), t.tile_size, t.tile_frames,
                               t.overlap)

    def _diffusers_tiling(self) -> dict:
        t = self._tiling
        stride = int(t.tile_size * (1 - t.overlap))
        stride_frames = int(t.tile_frames * (1 - t.overlap))
        return dict(height=t.tile_size, width=t.tile_size, frames=t.tile_frames,
                    stride_height=stride, stride_width=stride, stride_frames=stride_frames)

    def _set_diffusers_tiling(self, spatial, height, width, frames, stride_height, stride_width,
                              stride_frames) -> None:
        if height != width or stride_height != stride_width:
            raise ValueError(
                "vvae's tiling (Open-Sora's) has square tiles: tile_sample_min_height must equal "
                "tile_sample_min_width and the strides must be equal"
            )
        overlap = (height - stride_height) / height
        if (frames - stride_frames) / frames != overlap:
            raise ValueError(
                "vvae's tiling (Open-Sora's) has one overlap for space and time: "
                f"stride/tile must be the same, got {stride_height}/{height} and "
                f"{stride_frames}/{frames}"
            )
        ratio, time_ratio = self.info.spatial_ratio, self.info.time_ratio
        # Open-Sora's arithmetic must give diffusers' tiles, steps and blends exactly.
        for tile, stride, r in ((height, stride_height, ratio), (frames, stride_frames,
                                                                  time_ratio)):
            lat_tile, lat_stride = tile // r, stride // r
            ok = (int(tile * (1 - overlap)) == stride and tile % r == 0 and stride % r == 0
                  and int(lat_tile * overlap) == lat_tile - lat_stride
                  and int(lat_tile * (1 - overlap)) == lat_stride
                  and int(tile * overlap) == tile - stride)
            if not ok:
                raise ValueError(
                    f"tiles of {tile} at a stride of {stride} have no exact equivalent in vvae's "
                    "(Open-Sora's) tiling; use a stride of 3/4 of the tile, in multiples of the "
                    "compression"
                )
        self.set_tiling(spatial=spatial, tile_size=height, tile_frames=frames, overlap=overlap)

    def __getattr__(self, name):
        # diffusers' tile attributes, read from the current tiling.
        names = {"tile_sample_min_height": "height", "tile_sample_min_width": "width",
                 "tile_sample_min_num_frames": "frames",
                 "tile_sample_stride_height": "stride_height",
                 "tile_sample_stride_width": "stride_width",
                 "tile_sample_stride_num_frames": "stride_frames"}
        if name in names and "_tiling" in self.__dict__:
            return self._diffusers_tiling()[names[name]]
        raise AttributeError(name)


class AutoencoderDCVideo(_Autoencoder):
    """Open-Sora's Video DC-AE (family dcae), shaped like diffusers' image AutoencoderDC:
    `encode(x).latent` and `decode(z).sample`, unscaled.

    Open-Sora divides the encoder's output by its scaling_factor; diffusers' pipelines multiply
    the latent by theirs. So config.scaling_factor is 1 / Open-Sora's (1 when it has none):
    `vae.encode(x).latent * vae.config.scaling_factor == vae.encode_latent(x)`.
    """

    _family = "dcae"
    _accepts_images = True

    def _make_config(self, source):
        c = super()._make_config(source)
        c["scaling_factor"] = 1.0 / self.info.scale_factor
        c["opensora_scaling_factor"] = self.model_args.get("scaling_factor")
        return c

    def encode(self, x, return_dict: bool = True, progress: Progress = None, max_memory=None):
        out, _ = self._encode(x, unscaled=True, progress=progress, max_memory=max_memory)
        return EncoderOutput(latent=out["z"]) if return_dict else (out["z"],)

    def decode(self, z, return_dict: bool = True, progress: Progress = None, max_memory=None):
        x = self._decode(z, unscaled=True, progress=progress, max_memory=max_memory)
        return DecoderOutput(sample=x) if return_dict else (x,)

    def forward(self, sample, return_dict: bool = True):
        return self.decode(self.encode(sample).latent, return_dict=return_dict)

    __call__ = forward

    def enable_tiling(self, tile_size: Optional[int] = None, tile_frames: Optional[int] = None,
                      overlap: Optional[float] = None) -> None:
        """Open-Sora's spatial and temporal tiling (tile_size pixels, tile_frames frames)."""
        self.set_tiling(spatial=True, temporal=True, tile_size=tile_size,
                        tile_frames=tile_frames, overlap=overlap)

    def disable_tiling(self) -> None:
        self.set_tiling(spatial=False, temporal=False)


_CLASS_OF_FAMILY = {"ae2d": "AutoencoderKL", "hunyuan": "AutoencoderKLHunyuanVideo",
                    "dcae": "AutoencoderDCVideo"}


def from_pretrained(pretrained_model_name_or_path, weights=None, **kwargs):
    """Loads any family, returning the class that fits it."""
    path = os.fspath(pretrained_model_name_or_path)
    probe = _vvae.Model.load(
        model=os.path.join(path, kwargs["subfolder"]) if kwargs.get("subfolder") else path,
        weights=os.fspath(weights) if weights else "",
        config=os.fspath(kwargs["config"]) if kwargs.get("config") else "",
        preset=kwargs.get("preset") or "", without_weights=True,
        model_args=_json_args(kwargs.get("model_args") or {}))
    cls = globals()[_CLASS_OF_FAMILY[probe.info.family]]
    return cls.from_pretrained(path, weights, **kwargs)


def _json_args(args: dict) -> dict:
    """model_args values as the engine takes them: JSON text (strings that already are JSON
    pass as they are, so '{"a": 1}' and {"a": 1} both work)."""
    out = {}
    for key, value in args.items():
        if isinstance(value, str):
            try:
                json.loads(value)
                out[key] = value
                continue
            except ValueError:
                pass
        out[key] = json.dumps(value)
    return out
