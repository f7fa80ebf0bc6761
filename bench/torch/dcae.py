"""Open-Sora's Video DC-AE in plain PyTorch (video encoder and decoder, untiled), parameter names
as in the checkpoints. A minimal definition for the side-by-side benchmark, checked against the
golden vectors by check_golden.py."""
import torch
from torch import nn
from torch.nn import functional as F


class RMSNorm3d(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))

    def forward(self, x):
        y = (x / torch.sqrt(torch.square(x.float()).mean(dim=1, keepdim=True) + 1e-5)).to(x.dtype)
        return y * self.weight.view(1, -1, 1, 1, 1) + self.bias.view(1, -1, 1, 1, 1)


class ConvLayer(nn.Module):
    """Zero padding k//2 on T, H, W, a Conv3d, then an optional RMSNorm3d and activation."""

    def __init__(self, cin, cout, k, stride=1, groups=1, bias=True, norm=False, act=None):
        super().__init__()
        self.k, self.act = k, act
        self.conv = nn.Conv3d(cin, cout, k, stride=stride, groups=groups, bias=bias)
        if norm:
            self.norm = RMSNorm3d(cout)

    def forward(self, x):
        p = self.k // 2
        x = self.conv(F.pad(x, (p,) * 6))
        if hasattr(self, "norm"):
            x = self.norm(x)
        return F.silu(x) if self.act == "silu" else x


class Residual(nn.Module):
    def __init__(self, main, shortcut=None):
        super().__init__()
        self.main, self.shortcut_fn = main, shortcut

    def forward(self, x):
        return self.main(x) + (x if self.shortcut_fn is None else self.shortcut_fn(x))


class Seq(nn.Module):
    def __init__(self, ops):
        super().__init__()
        self.op_list = nn.ModuleList(ops)

    def forward(self, x):
        for op in self.op_list:
            x = op(x)
        return x


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = ConvLayer(c, c, 3, act="silu")
        self.conv2 = ConvLayer(c, c, 3, bias=False, norm=True)

    def forward(self, x):
        return self.conv2(self.conv1(x))


class LiteMLA(nn.Module):
    def __init__(self, c, dim=32):
        super().__init__()
        self.dim, heads = dim, c // dim
        total = heads * dim
        self.qkv = ConvLayer(c, 3 * total, 1, bias=False)
        self.aggreg = nn.ModuleList([nn.Sequential(
            nn.Conv3d(3 * total, 3 * total, 5, padding=2, groups=3 * total, bias=False),
            nn.Conv3d(3 * total, 3 * total, 1, groups=3 * heads, bias=False))])
        self.proj = ConvLayer(2 * total, c, 1, bias=False, norm=True)

    def forward(self, x):
        qkv = self.qkv(x)
        qkv = torch.cat([qkv, self.aggreg[0](qkv)], dim=1)
        b, _, t, h, w = qkv.shape
        qkv = qkv.reshape(b, -1, 3 * self.dim, t * h * w)
        q, k, v = F.relu(qkv[:, :, :self.dim]), F.relu(qkv[:, :, self.dim:2 * self.dim]), qkv[:, :, 2 * self.dim:]
        v = F.pad(v, (0, 0, 0, 1), value=1.0)
        out = (v @ k.transpose(-1, -2)) @ q
        out = out[:, :, :-1] / (out[:, :, -1:] + 1e-15)
        return self.proj(out.reshape(b, -1, t, h, w))


class GLUMBConv(nn.Module):
    def __init__(self, c, expand=4):
        super().__init__()
        mid = c * expand
        self.inverted_conv = ConvLayer(c, 2 * mid, 1, act="silu")
        self.depth_conv = ConvLayer(2 * mid, 2 * mid, 3, groups=2 * mid)
        self.point_conv = ConvLayer(mid, c, 1, bias=False, norm=True)

    def forward(self, x):
        x, gate = self.depth_conv(self.inverted_conv(x)).chunk(2, dim=1)
        return self.point_conv(x * F.silu(gate))


class EViTBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.context_module, self.local_module = Residual(LiteMLA(c)), Residual(GLUMBConv(c))

    def forward(self, x):
        return self.local_module(self.context_module(x))


def unshuffle(x, r, temporal):
    b, c, t, h, w = x.shape
    if temporal:
        x = x.view(b, c, t // r, r, h // r, r, w // r, r).permute(0, 1, 3, 5, 7, 2, 4, 6)
        return x.reshape(b, c * r ** 3, t // r, h // r, w // r)
    x = x.view(b, c, t, h // r, r, w // r, r).permute(0, 1, 4, 6, 2, 3, 5)
    return x.reshape(b, c * r * r, t, h // r, w // r)


def shuffle(x, r, temporal):
    b, c, t, h, w = x.shape
    if temporal:
        x = x.view(b, c // r ** 3, r, r, r, t, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return x.reshape(b, c // r ** 3, t * r, h * r, w * r)
    x = x.view(b, c // (r * r), r, r, t, h, w).permute(0, 1, 4, 5, 2, 6, 3)
    return x.reshape(b, c // (r * r), t, h * r, w * r)


def averaging(cout, r, temporal):
    def fn(x):
        y = unshuffle(x, r, temporal and x.shape[2] != 1)
        b, c, t, h, w = y.shape
        return y.view(b, cout, c // cout, t, h, w).mean(dim=2)
    return fn


def duplicating(cin, cout, r, temporal):
    def fn(x):
        t3 = temporal and x.shape[2] != 1
        y = x.repeat_interleave(cout * r ** (3 if t3 else 2) // cin, dim=1)
        return shuffle(y, r, t3)
    return fn


class InterpolateConv(nn.Module):
    def __init__(self, cin, cout, temporal):
        super().__init__()
        self.temporal = temporal
        self.conv = ConvLayer(cin, cout, 3)

    def forward(self, x):
        t = 2 if self.temporal and x.shape[2] != 1 else 1
        return self.conv(F.interpolate(x, scale_factor=(t, 2, 2), mode="nearest"))


def block(kind, c):
    return Residual(ResBlock(c)) if kind == "ResBlock" else EViTBlock(c)


class Encoder(nn.Module):
    def __init__(self, e):
        super().__init__()
        widths, depths, kinds, temporal = e["width_list"], e["depth_list"], e["block_type"], e["temporal_downsample"]
        self.project_in = ConvLayer(e["in_channels"], widths[0], 3)
        self.stages = nn.ModuleList()
        for s, (wd, dp) in enumerate(zip(widths, depths)):
            ops = [block(kinds[s], wd) for _ in range(dp)]
            if s < len(widths) - 1:
                stride = (2, 2, 2) if temporal[s] else (1, 2, 2)
                ops.append(Residual(ConvLayer(wd, widths[s + 1], 3, stride=stride),
                                    averaging(widths[s + 1], 2, temporal[s])))
            self.stages.append(Seq(ops))
        self.project_out = Residual(Seq([ConvLayer(widths[-1], e["latent_channels"], 3)]),
                                    averaging(e["latent_channels"], 1, False))

    def forward(self, x):
        x = self.project_in(x)
        for stage in self.stages:
            x = stage(x)
        return self.project_out(x)


class Decoder(nn.Module):
    def __init__(self, d):
        super().__init__()
        widths, depths, kinds, temporal = d["width_list"], d["depth_list"], d["block_type"], d["temporal_upsample"]
        self.project_in = Residual(ConvLayer(d["latent_channels"], widths[-1], 3),
                                   duplicating(d["latent_channels"], widths[-1], 1, False))
        self.stages = nn.ModuleList()
        for s, (wd, dp) in enumerate(zip(widths, depths)):
            ops = []
            if s < len(widths) - 1:
                ops.append(Residual(InterpolateConv(widths[s + 1], wd, temporal[s]),
                                    duplicating(widths[s + 1], wd, 2, temporal[s])))
            ops += [block(kinds[s], wd) for _ in range(dp)]
            self.stages.append(Seq(ops))
        self.project_out = Seq([RMSNorm3d(widths[0]), nn.ReLU(), ConvLayer(widths[0], d["in_channels"], 3)])

    def forward(self, z):
        x = self.project_in(z)
        for stage in reversed(self.stages):
            x = stage(x)
        return self.project_out(x)


class DCAE(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.encoder, self.decoder = Encoder(a["encoder"]), Decoder(a["decoder"])
        self.scaling = a.get("scaling_factor")

    def encode(self, x):
        z = torch.cat([self.encoder(x[i:i + 1]) for i in range(x.shape[0])])
        return z / self.scaling if self.scaling is not None else z

    def decode(self, z):
        if self.scaling is not None:
            z = z * self.scaling
        return torch.cat([self.decoder(z[i:i + 1]) for i in range(z.shape[0])])


_WIDTHS = [128, 256, 512, 512, 1024, 1024]
_BLOCKS = ["ResBlock"] * 3 + ["EViTS5_GLU"] * 3
_TEMPORAL = [False, False, False, True, True, False]
DC_AE_F32T4C128 = dict(
    encoder=dict(in_channels=3, latent_channels=128, width_list=_WIDTHS, depth_list=[2, 2, 2, 3, 3, 3],
                 block_type=_BLOCKS, temporal_downsample=_TEMPORAL),
    decoder=dict(in_channels=3, latent_channels=128, width_list=_WIDTHS, depth_list=[3, 3, 3, 3, 3, 3],
                 block_type=_BLOCKS, temporal_upsample=_TEMPORAL),
    scaling_factor=None)


def build(args):
    return DCAE(args)
