"""The ae2d family (Open-Sora's opensora/models/vae/autoencoder_2d.py, Flux's AutoEncoder) in
PyTorch, for training. Module names and nesting follow the upstream module tree, so that
state_dict() keys are the checkpoint keys vvae loads (encoder.down.0.block.0.norm1.weight, ...).

Written for PyTorch 1.13 (Debian's python3-torch): attention is spelled out instead of
F.scaled_dot_product_attention."""
import math

import torch
import torch.nn.functional as F
from torch import nn

GROUPS = 32  # GroupNorm(32), hard-coded upstream: every width is a multiple of 32
EPS = 1e-6


def group_norm(c):
    return nn.GroupNorm(GROUPS, c, eps=EPS, affine=True)


def conv(cin, cout, k, stride=1, padding=None):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if padding is None else padding)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = conv(cin, cout, 3)
        self.norm2 = group_norm(cout)
        self.conv2 = conv(cout, cout, 3)
        self.nin_shortcut = conv(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H*W positions of a frame; 1x1 convs."""

    def __init__(self, c):
        super().__init__()
        self.norm = group_norm(c)
        self.q = conv(c, c, 1)
        self.k = conv(c, c, 1)
        self.v = conv(c, c, 1)
        self.proj_out = conv(c, c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        y = self.norm(x)
        q = self.q(y).flatten(2).transpose(1, 2)  # (n, hw, c)
        k = self.k(y).flatten(2)  # (n, c, hw)
        v = self.v(y).flatten(2).transpose(1, 2)  # (n, hw, c)
        a = torch.softmax(torch.bmm(q, k) * (1.0 / math.sqrt(c)), dim=-1)
        o = torch.bmm(a, v).transpose(1, 2).reshape(n, c, h, w)
        return x + self.proj_out(o)


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = conv(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # zeros on the right and bottom only


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = conv(c, c, 3)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Mid(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block_1 = ResnetBlock(c, c)
        self.attn_1 = AttnBlock(c)
        self.block_2 = ResnetBlock(c, c)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Level(nn.Module):
    """down.{i} / up.{i}: `block` (a ModuleList), then `downsample` or `upsample` if any."""

    def __init__(self, blocks, resample=None, up=False):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.kind = "upsample" if up else "downsample"
        if resample is not None:
            setattr(self, self.kind, resample)

    @property
    def resample(self):
        return getattr(self, self.kind, None)

    def forward(self, x):
        for b in self.block:
            x = b(x)
        return x


class Encoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        widths = [a["ch"] * m for m in a["ch_mult"]]
        self.conv_in = conv(a["in_channels"], a["ch"], 3)
        self.down = nn.ModuleList()
        cin = a["ch"]
        for i, w in enumerate(widths):
            blocks = []
            for _ in range(a["num_res_blocks"]):
                blocks.append(ResnetBlock(cin, w))
                cin = w
            self.down.append(Level(blocks, Downsample(w) if i < len(widths) - 1 else None))
        self.mid = Mid(cin)
        self.norm_out = group_norm(cin)
        self.conv_out = conv(cin, 2 * a["z_channels"], 3)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
            if level.resample is not None:
                h = level.resample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        widths = [a["ch"] * m for m in a["ch_mult"]]
        top = widths[-1]
        self.conv_in = conv(a["z_channels"], top, 3)
        self.mid = Mid(top)
        levels = [None] * len(widths)
        cin = top
        for i in reversed(range(len(widths))):  # built from the top; stored as up.0 .. up.{n-1}
            blocks = []
            for _ in range(a["num_res_blocks"] + 1):
                blocks.append(ResnetBlock(cin, widths[i]))
                cin = widths[i]
            levels[i] = Level(blocks, Upsample(widths[i]) if i > 0 else None, up=True)
        self.up = nn.ModuleList(levels)
        self.norm_out = group_norm(widths[0])
        self.conv_out = conv(widths[0], a["out_ch"], 3)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
            if level.resample is not None:
                h = level.resample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoEncoder(nn.Module):
    """encode: frames (N, 3, H, W) in [-1, 1] -> moments (N, 2 * z_channels, H/f, W/f);
    the latent of a clip is scale_factor * (mean - shift_factor), as upstream."""

    def __init__(self, model_args):
        super().__init__()
        for m in model_args["ch_mult"]:
            if (model_args["ch"] * m) % GROUPS:
                raise ValueError("every ch * ch_mult must be a multiple of 32 (GroupNorm(32))")
        self.args = dict(model_args)
        self.encoder = Encoder(model_args)
        self.decoder = Decoder(model_args)

    @staticmethod
    def split_moments(moments):
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode_clip(self, x):
        """(B, C, T, H, W) -> the scaled mode latent (B, Z, T, h, w), as `vvae encode`."""
        b, c, t, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        mean, _ = self.split_moments(self.encoder(frames))
        z = self.args["scale_factor"] * (mean - self.args["shift_factor"])
        return z.reshape(b, t, *z.shape[1:]).permute(0, 2, 1, 3, 4)

    def decode_clip(self, z):
        """(B, Z, T, h, w) -> (B, C, T, H, W), not clamped, as `vvae decode`."""
        b, c, t, h, w = z.shape
        frames = z.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        x = self.decoder(frames / self.args["scale_factor"] + self.args["shift_factor"])
        return x.reshape(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4)


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())
