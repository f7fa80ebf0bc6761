"""The Flux-style 2D AutoEncoder in plain PyTorch, parameter names as in the checkpoints.

A minimal definition for the side-by-side benchmark; checked against the golden vectors by
check_golden.py so that both sides compute the same function."""
import torch
from torch import nn
from torch.nn import functional as F


def norm(c):
    return nn.GroupNorm(32, c, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1, self.conv1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = norm(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (m(y).reshape(b, c, h * w).transpose(1, 2) for m in (self.q, self.k, self.v))
        # Torch 1.13 has no scaled_dot_product_attention: written out.
        a = torch.softmax(q @ k.transpose(1, 2) / c ** 0.5, dim=-1) @ v
        return x + self.proj_out(a.transpose(1, 2).reshape(b, c, h, w))


class Level(nn.Module):
    pass


class Mid(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.block_1, self.attn_1, self.block_2 = ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)

    def forward(self, x):
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        ch, mult, n = a["ch"], a["ch_mult"], a["num_res_blocks"]
        self.conv_in = nn.Conv2d(a["in_channels"], ch, 3, padding=1)
        self.down = nn.ModuleList()
        cin = ch
        for i, m in enumerate(mult):
            level = Level()
            level.block = nn.ModuleList()
            for _ in range(n):
                level.block.append(ResnetBlock(cin, ch * m))
                cin = ch * m
            if i != len(mult) - 1:
                level.downsample = Level()
                level.downsample.conv = nn.Conv2d(cin, cin, 3, stride=2)
            self.down.append(level)
        self.mid = Mid(cin)
        self.norm_out, self.conv_out = norm(cin), nn.Conv2d(cin, 2 * a["z_channels"], 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample.conv(F.pad(h, (0, 1, 0, 1)))
        return self.conv_out(F.silu(self.norm_out(self.mid(h))))


class Decoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        ch, mult, n = a["ch"], a["ch_mult"], a["num_res_blocks"]
        top = ch * mult[-1]
        self.conv_in = nn.Conv2d(a["z_channels"], top, 3, padding=1)
        self.mid = Mid(top)
        self.up = nn.ModuleList()
        for i, m in enumerate(mult):
            level = Level()
            cin = top if i == len(mult) - 1 else ch * mult[i + 1]
            level.block = nn.ModuleList(ResnetBlock(cin if j == 0 else ch * m, ch * m) for j in range(n + 1))
            if i != 0:
                level.upsample = Level()
                level.upsample.conv = nn.Conv2d(ch * m, ch * m, 3, padding=1)
            self.up.append(level)
        self.norm_out, self.conv_out = norm(ch * mult[0]), nn.Conv2d(ch * mult[0], a["out_ch"], 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample"):
                h = level.upsample.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoEncoder2D(nn.Module):
    """encode: (B, C, T, H, W) -> (z, mean, logvar); decode: z -> (B, C, T, H, W). Frames run one
    at a time, as vvae does."""

    def __init__(self, a):
        super().__init__()
        self.encoder, self.decoder = Encoder(a), Decoder(a)
        self.scale, self.shift = a["scale_factor"], a["shift_factor"]

    def encode(self, x):
        b, c, t, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        m = torch.cat([self.encoder(f[None]) for f in frames])
        m = m.reshape(b, t, *m.shape[1:]).permute(0, 2, 1, 3, 4)
        mean, logvar = m.chunk(2, dim=1)
        return self.scale * (mean - self.shift), mean, logvar.clamp(-30, 20), m

    def decode(self, z):
        b, c, t, h, w = z.shape
        frames = (z / self.scale + self.shift).permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        x = torch.cat([self.decoder(f[None]) for f in frames])
        return x.reshape(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4)


FLUX_AE = dict(in_channels=3, ch=128, out_ch=3, ch_mult=[1, 2, 4, 4], num_res_blocks=2, z_channels=16,
               scale_factor=0.3611, shift_factor=0.1159)


def build(args):
    keep = {k: v for k, v in args.items() if k in FLUX_AE}
    return AutoEncoder2D(keep)
