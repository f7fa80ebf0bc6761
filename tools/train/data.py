"""Training and held-out clips: real photographs that Debian's python3-skimage ships (bundled
scikit-image sample images, public domain or CC0), filmed by a synthetic camera that pans and
zooms. Every clip is drawn from a torch.Generator, so the data is a pure function of its seed.

A clip of T frames is a window of out x out pixels moving over one image: at frame t the
window's centre is c0 + t * v * s_t and its scale (source pixels per output pixel) is
s_t = s0 * zoom**t. Each frame is resampled bilinearly from the level of an image pyramid
(2x2 box averages) that leaves a residual scale in [1, 2), so zooming out does not alias.
"""
import math

import torch
import torch.nn.functional as F

# (loader name in skimage.data, licence as its docstring states, sampling weight). Grey images
# are repeated over the three channels; colour images are drawn twice as often.
TRAIN_IMAGES = [
    ("astronaut", "public domain (NASA)", 2),
    ("coffee", "CC0 (Rachel Michetti)", 2),
    ("rocket", "public domain (SpaceX)", 2),
    ("hubble_deep_field", "public domain (NASA)", 2),
    ("retina", "CC0 1.0", 2),
    ("immunohistochemistry", "no known copyright restrictions", 2),
    ("camera", "CC0 (Lav Varshney)", 1),
    ("coins", "no known copyright restrictions", 1),
    ("brick", "CC0 (CC0Textures)", 1),
    ("grass", "CC0 (CC0Textures)", 1),
    ("gravel", "CC0 (CC0Textures)", 1),
]
# Never seen in training.
HELDOUT_IMAGES = [("chelsea", "CC0 (Stefan van der Walt)", 1)]

MIN_SCALE, MAX_SCALE = 0.75, 4.0  # source pixels per output pixel (< 1 magnifies)
MAX_ZOOM_PER_FRAME = 0.04  # |log zoom| per frame
MAX_PAN_PER_FRAME = 4.0  # output pixels per frame, each axis


def load_image(name):
    """(3, H, W) float32 in [-1, 1]."""
    import skimage.data

    a = torch.from_numpy(getattr(skimage.data, name)().copy())
    if a.ndim == 2:
        a = a[:, :, None].expand(-1, -1, 3)
    a = a[:, :, :3].permute(2, 0, 1).float()
    return a / 127.5 - 1.0


class Image:
    def __init__(self, name, licence, weight):
        self.name, self.licence, self.weight = name, licence, weight
        img = load_image(name)[None]
        self.pyramid = [img]
        while min(img.shape[-2:]) >= 128:
            img = F.avg_pool2d(img, 2)
            self.pyramid.append(img)
        self.height, self.width = self.pyramid[0].shape[-2:]

    def frame(self, cx, cy, scale, out, flip):
        """The out x out window (or out = (height, width)) centred on (cx, cy) (pixels of the
        full image, x right, y down) at `scale` source pixels per output pixel: (3, out, out)."""
        out_h, out_w = (out, out) if isinstance(out, int) else out
        level = min(max(0, int(math.floor(math.log2(scale)))), len(self.pyramid) - 1)
        f = 2.0**level
        img = self.pyramid[level]
        h, w = img.shape[-2:]

        # Output pixel centre j (0..n-1) -> source coordinate (pixel centres at k + 0.5).
        def offsets(n):
            return (torch.arange(n, dtype=torch.float64) + 0.5 - n / 2) * (scale / f)

        xs = cx / f + offsets(out_w)
        ys = cy / f + offsets(out_h)
        if flip:
            xs = xs.flip(0)
        gx = (xs / w * 2 - 1).float()
        gy = (ys / h * 2 - 1).float()
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
        y = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection",
                          align_corners=False)
        return y[0].clamp(-1.0, 1.0)


def uniform(g, lo, hi):
    return lo + (hi - lo) * torch.rand((), generator=g, dtype=torch.float64).item()


class ClipSampler:
    def __init__(self, images, out=64):
        self.images = [Image(*spec) for spec in images]
        self.out = out
        self.weights = torch.tensor([float(i.weight) for i in self.images])

    def motion(self, g, image, frames):
        """Random camera motion over `image`: (s0, zoom, vx, vy, cx0, cy0, flip)."""
        out = self.out
        max_scale = min(MAX_SCALE, 0.9 * min(image.height, image.width) / out)
        s0 = math.exp(uniform(g, math.log(MIN_SCALE), math.log(max_scale)))
        zoom = math.exp(uniform(g, -MAX_ZOOM_PER_FRAME, MAX_ZOOM_PER_FRAME))
        vx = uniform(g, -MAX_PAN_PER_FRAME, MAX_PAN_PER_FRAME)
        vy = uniform(g, -MAX_PAN_PER_FRAME, MAX_PAN_PER_FRAME)
        flip = bool(torch.rand((), generator=g).item() < 0.5)
        # Keep the whole trajectory inside the image where it fits (reflection beyond).
        xs, ys, halves = [0.0], [0.0], []
        s = s0
        for t in range(frames):
            if t:
                xs.append(xs[-1] + vx * s)
                ys.append(ys[-1] + vy * s)
            halves.append(out / 2 * s)
            s = min(s * zoom, max_scale)
        half = max(halves)
        lo_x, hi_x = half - min(xs), image.width - half - max(xs)
        lo_y, hi_y = half - min(ys), image.height - half - max(ys)
        cx0 = uniform(g, lo_x, hi_x) if hi_x > lo_x else image.width / 2 - (min(xs) + max(xs)) / 2
        cy0 = uniform(g, lo_y, hi_y) if hi_y > lo_y else image.height / 2 - (min(ys) + max(ys)) / 2
        return dict(s0=s0, zoom=zoom, vx=vx, vy=vy, cx0=cx0, cy0=cy0, flip=flip,
                    max_scale=max_scale)

    def render(self, image, m, frames):
        """(3, T, out, out) for motion m."""
        out, cx, cy, s = [], m["cx0"], m["cy0"], m["s0"]
        for t in range(frames):
            if t:
                cx += m["vx"] * s
                cy += m["vy"] * s
            out.append(image.frame(cx, cy, s, self.out, m["flip"]))
            s = min(s * m["zoom"], m["max_scale"])
        return torch.stack(out, dim=1)

    def clip(self, g, frames, index=None):
        if index is None:
            index = int(torch.multinomial(self.weights, 1, generator=g).item())
        image = self.images[index]
        m = self.motion(g, image, frames)
        return self.render(image, m, frames), dict(image=image.name, **m)

    def batch(self, g, clips, frames):
        """(clips * frames, 3, out, out): every frame of `clips` clips, for the per-frame model."""
        xs = [self.clip(g, frames)[0] for _ in range(clips)]
        return torch.stack(xs).permute(0, 2, 1, 3, 4).reshape(-1, 3, self.out, self.out)
