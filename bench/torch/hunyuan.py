"""HunyuanVideo's causal 3D VAE (AutoencoderKLCausal3D) in plain PyTorch, untiled, parameter
names as in the checkpoints. A minimal definition for the side-by-side benchmark, checked
against the golden vectors by check_golden.py."""
import math

import torch
from torch import nn
from torch.nn import functional as F


class CausalConv3d(nn.Module):
    """Replicate padding on W, H (k//2 each side) and T (k-1 in front), then a plain conv."""

    def __init__(self, cin, cout, k=3, stride=1):
        super().__init__()
        self.k = k
        self.conv = nn.Conv3d(cin, cout, k, stride=stride)

    def forward(self, x):
        p = self.k // 2
        return self.conv(F.pad(x, (p, p, p, p, self.k - 1, 0), mode="replicate"))


class Resnet(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, cin, eps=1e-6), CausalConv3d(cin, cout)
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout, eps=1e-6), CausalConv3d(cout, cout)
        if cin != cout:
            self.conv_shortcut = CausalConv3d(cin, cout, k=1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if hasattr(self, "conv_shortcut") else x) + h


class Attention(nn.Module):
    """One head over all (T, H, W) tokens, frame-causal mask (a token sees frames <= its own)."""

    def __init__(self, c, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, c, eps=1e-6)
        self.to_q, self.to_k, self.to_v = nn.Linear(c, c), nn.Linear(c, c), nn.Linear(c, c)
        self.to_out = nn.ModuleList([nn.Linear(c, c)])

    def forward(self, x):
        b, c, t, h, w = x.shape
        y = self.group_norm(x).reshape(b, c, t * h * w).transpose(1, 2)
        q, k, v = self.to_q(y), self.to_k(y), self.to_v(y)
        frame = torch.arange(t * h * w, device=x.device) // (h * w)
        mask = torch.where(frame[None, :] <= frame[:, None], 0.0, float("-inf")).to(x.dtype)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c) + mask, dim=-1) @ v
        out = self.to_out[0](a).transpose(1, 2).reshape(b, c, t, h, w)
        return x + out


class Mid(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.resnets = nn.ModuleList([Resnet(c, c, groups), Resnet(c, c, groups)])
        self.attentions = nn.ModuleList([Attention(c, groups)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class Block(nn.Module):
    pass


def strides(n, time_ratio, spatial_ratio):
    """Per block: (t, s) factors by the upstream placement rule (time ratio 4)."""
    out = []
    for i in range(n):
        spatial = i < int(math.log2(spatial_ratio))
        temporal = i >= n - 1 - int(math.log2(time_ratio)) and i != n - 1
        out.append((2 if temporal else 1, 2 if spatial else 1))
    return out


class Encoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        ch, g, n = a["block_out_channels"], a["norm_num_groups"], a["layers_per_block"]
        self.conv_in = CausalConv3d(a["in_channels"], ch[0])
        self.down_blocks = nn.ModuleList()
        cin = ch[0]
        for i, (t, s) in enumerate(strides(len(ch), a["time_compression_ratio"], a["spatial_compression_ratio"])):
            block = Block()
            block.resnets = nn.ModuleList(Resnet(cin if j == 0 else ch[i], ch[i], g) for j in range(n))
            if t > 1 or s > 1:
                down = Block()
                down.conv = CausalConv3d(ch[i], ch[i], stride=(t, s, s))
                block.downsamplers = nn.ModuleList([down])
            cin = ch[i]
            self.down_blocks.append(block)
        self.mid_block = Mid(ch[-1], g)
        self.conv_norm_out = nn.GroupNorm(g, ch[-1], eps=1e-6)
        self.conv_out = CausalConv3d(ch[-1], 2 * a["latent_channels"])

    def forward(self, x):
        h = self.conv_in(x)
        for block in self.down_blocks:
            for r in block.resnets:
                h = r(h)
            if hasattr(block, "downsamplers"):
                h = block.downsamplers[0].conv(h)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(h))))


class Decoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        ch, g, n = list(reversed(a["block_out_channels"])), a["norm_num_groups"], a["layers_per_block"]
        self.conv_in = CausalConv3d(a["latent_channels"], ch[0])
        self.mid_block = Mid(ch[0], g)
        self.up_blocks = nn.ModuleList()
        cin = ch[0]
        self.factors = strides(len(ch), a["time_compression_ratio"], a["spatial_compression_ratio"])
        for i, (t, s) in enumerate(self.factors):
            block = Block()
            block.resnets = nn.ModuleList(Resnet(cin if j == 0 else ch[i], ch[i], g) for j in range(n + 1))
            if t > 1 or s > 1:
                up = Block()
                up.conv = CausalConv3d(ch[i], ch[i])
                block.upsamplers = nn.ModuleList([up])
            cin = ch[i]
            self.up_blocks.append(block)
        self.conv_norm_out = nn.GroupNorm(g, ch[-1], eps=1e-6)
        self.conv_out = CausalConv3d(ch[-1], a["out_channels"])

    def forward(self, z):
        h = self.mid_block(self.conv_in(z))
        for block, (t, s) in zip(self.up_blocks, self.factors):
            for r in block.resnets:
                h = r(h)
            if hasattr(block, "upsamplers"):
                # Frame 0 is upsampled in H, W only; the others in T, H, W.
                first = F.interpolate(h[:, :, 0], scale_factor=(s, s), mode="nearest")[:, :, None]
                if h.shape[2] > 1:
                    rest = F.interpolate(h[:, :, 1:], scale_factor=(t, s, s), mode="nearest")
                    first = torch.cat([first, rest], dim=2)
                h = block.upsamplers[0].conv(first)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class CausalVAE3D(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.encoder, self.decoder = Encoder(a), Decoder(a)
        c = a["latent_channels"]
        self.quant_conv, self.post_quant_conv = nn.Conv3d(2 * c, 2 * c, 1), nn.Conv3d(c, c, 1)
        self.scale, self.shift = a["scale_factor"], a["shift_factor"]

    def encode(self, x):
        m = self.quant_conv(self.encoder(x))
        mean, logvar = m.chunk(2, dim=1)
        return self.scale * (mean - self.shift), mean, logvar.clamp(-30, 20), m

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z / self.scale + self.shift))


HUNYUAN_VAE = dict(in_channels=3, out_channels=3, latent_channels=16, layers_per_block=2, norm_num_groups=32,
                   block_out_channels=[128, 256, 512, 512], time_compression_ratio=4,
                   spatial_compression_ratio=8, scale_factor=0.476986, shift_factor=0.0)


def build(args):
    return CausalVAE3D({k: args[k] for k in HUNYUAN_VAE})
