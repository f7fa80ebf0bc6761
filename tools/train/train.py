#!/usr/bin/python3
"""Trains a small 2D AutoEncoder of vvae's `ae2d` family (Open-Sora's Flux-style AE: 8x spatial
compression, 16 latent channels, reduced width) on CPU, and evaluates models on held-out clips.

    tools/train/train.py train    --out out/train [--steps N --seed S --resume]
    tools/train/train.py heldout  --out DIR          # writes the held-out clips
    tools/train/train.py evaluate --model DIR --clips DIR [--vvae build/vvae]

Run it with Debian's /usr/bin/python3 (python3-torch, python3-skimage; tools/train/install-deps).
See tools/train/README.md."""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# OpenMP threads that wait by sleeping rather than spinning: on a busy machine spinning threads
# took three times the CPU per step; on an idle one the difference is small. (Results do not
# depend on it.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

import ae2d  # noqa: E402
import data  # noqa: E402
import safetensors_io  # noqa: E402

HELDOUT_SEED = 7_000_001  # motions of held-out clips; training draws from --seed
SCALE_FIT_SEED = 7_000_002  # frames the latent scale/shift are fitted on (training images)
HELDOUT_FRAMES = 8
HELDOUT_CLIPS_PER_UNSEEN_IMAGE = 3


# --- metrics --------------------------------------------------------------------------------

def to_uint8(x):
    """[-1, 1] floats -> 8-bit values, as a video writer would store them."""
    return torch.round((x.clamp(-1.0, 1.0) + 1.0) * 127.5).to(torch.float64)


def psnr8(x, y):
    """PSNR (dB, data range 255) between two [-1, 1] clips, both clamped and rounded to 8 bit."""
    mse = ((to_uint8(x) - to_uint8(y)) ** 2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


# --- held-out clips -------------------------------------------------------------------------

def heldout_clips(crop=64):
    """[(name, clip (1, 3, T, crop, crop), description)]: one unseen motion per training image
    and HELDOUT_CLIPS_PER_UNSEEN_IMAGE motions over each image never trained on."""
    out = []
    for images, per_image, kind in ((data.TRAIN_IMAGES, 1, "unseen motion, training image"),
                                    (data.HELDOUT_IMAGES, HELDOUT_CLIPS_PER_UNSEEN_IMAGE,
                                     "image never trained on")):
        sampler = data.ClipSampler(images, out=crop)
        for index, image in enumerate(sampler.images):
            for k in range(per_image):
                g = torch.Generator().manual_seed(HELDOUT_SEED + 1000 * len(out) + k)
                clip, motion = sampler.clip(g, HELDOUT_FRAMES, index=index)
                name = f"{image.name}-{k}"
                desc = (f"{kind}; {image.licence}; scale {motion['s0']:.2f} zoom/frame "
                        f"{motion['zoom']:.3f} pan/frame ({motion['vx']:.1f}, {motion['vy']:.1f}) px"
                        f"{' flipped' if motion['flip'] else ''}")
                out.append((name, clip[None], desc, kind))
    return out


def cmd_heldout(args):
    os.makedirs(args.out, exist_ok=True)
    for name, clip, desc, _ in heldout_clips(args.crop):
        if args.only and name not in args.only:
            continue
        path = os.path.join(args.out, f"{name}.safetensors")
        safetensors_io.save(path, {"x": clip}, {"description": desc, "layout": "B,C,T,H,W",
                                                "generator": "tools/train/train.py heldout"})
        print(f"{path}  {tuple(clip.shape)}  {desc}")


# --- model files ----------------------------------------------------------------------------

def model_args_from(args):
    return {"resolution": args.crop, "in_channels": 3, "ch": args.ch, "out_ch": 3,
            "ch_mult": args.ch_mult, "num_res_blocks": args.num_res_blocks,
            "z_channels": args.z_channels, "scale_factor": 1.0, "shift_factor": 0.0}


def load_model(directory):
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    if config.get("family") != "ae2d":
        raise SystemExit(f"{directory}: not an ae2d model")
    model = ae2d.AutoEncoder(config["model_args"])
    weights, _ = safetensors_io.load(os.path.join(directory, "weights.safetensors"))
    model.load_state_dict(weights, strict=True)
    return model.eval()


def write_model(directory, model, metadata):
    os.makedirs(directory, exist_ok=True)
    config = {"family": "ae2d", "model_args": model.args}
    tmp = os.path.join(directory, "config.json.tmp")
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(directory, "config.json"))
    safetensors_io.save(os.path.join(directory, "weights.safetensors"), model.state_dict(),
                        metadata)


# --- training -------------------------------------------------------------------------------

def lr_at(step, args):
    """Linear warm-up, then cosine decay to lr_min_ratio * lr (step counts from 1)."""
    if step <= args.warmup:
        return args.lr * step / args.warmup
    p = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (args.lr_min_ratio + (1 - args.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def vae_loss(model, x, g_noise, kl_weight):
    """Open-Sora's VAELoss without its perceptual term (no LPIPS weights here): per frame, the
    summed L1 reconstruction error plus kl_weight * the summed KL to N(0, I), both divided by
    the number of pixel values of a frame (a constant factor, so the balance is upstream's).
    The decoder sees a sample of the posterior, as in upstream training."""
    mean, logvar = model.split_moments(model.encoder(x))
    std = torch.exp(0.5 * logvar)
    z = mean + std * torch.randn(mean.shape, generator=g_noise)
    rec = model.decoder(z)
    l1 = (rec - x).abs().mean()
    kl = 0.5 * (mean**2 + std**2 - 1.0 - logvar).sum() / x.numel()
    return l1 + kl_weight * kl, l1, kl, logvar


def evaluate_torch(model, clips):
    with torch.no_grad():
        return {name: psnr8(clip, model.decode_clip(model.encode_clip(clip)))
                for name, clip, _, _ in clips}


def fit_scale_shift(model, args):
    """Open-Sora's convention: shift = mean of the latent, scale = 1 / its std, over latents of
    training frames (posterior mode), one scalar each."""
    sampler = data.ClipSampler(data.TRAIN_IMAGES, out=args.crop)
    g = torch.Generator().manual_seed(SCALE_FIT_SEED)
    zs = []
    with torch.no_grad():
        for _ in range(args.scale_fit_batches):
            x = sampler.batch(g, args.batch_clips, args.clip_frames)
            zs.append(model.split_moments(model.encoder(x))[0].to(torch.float64).flatten())
    z = torch.cat(zs)
    shift = z.mean().item()
    scale = 1.0 / z.std().item()
    return round(scale, 4), round(shift, 4)


def save_checkpoint(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


TRAIN_KEYS = ["steps", "seed", "lr", "lr_min_ratio", "warmup", "batch_clips", "clip_frames",
              "crop", "ch", "ch_mult", "num_res_blocks", "z_channels", "logvar_init", "zero_init",
              "kl_weight", "grad_clip", "threads"]


def cmd_train(args):
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    log_path = os.path.join(args.out, "log.jsonl")
    settings = {k: getattr(args, k) for k in TRAIN_KEYS}

    torch.manual_seed(args.seed)
    model = ae2d.AutoEncoder(model_args_from(args))
    with torch.no_grad():
        # The posterior starts narrow (std exp(logvar_init / 2)).
        model.encoder.conv_out.bias[args.z_channels:].fill_(args.logvar_init)
        if args.zero_init:  # every residual branch starts as zero: the network starts shallow
            for m in model.modules():
                if isinstance(m, ae2d.ResnetBlock):
                    m.conv2.weight.zero_()
                    m.conv2.bias.zero_()
                elif isinstance(m, ae2d.AttnBlock):
                    m.proj_out.weight.zero_()
                    m.proj_out.bias.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    g_data = torch.Generator().manual_seed(args.seed)
    g_noise = torch.Generator().manual_seed(args.seed + 1)
    step, wall_before, cpu_before = 0, 0.0, 0.0
    sums, win_steps = {"loss": 0.0, "l1": 0.0, "kl": 0.0}, 0  # the current logging window

    if args.resume and os.path.exists(ckpt_path):
        state = torch.load(ckpt_path)
        if state["settings"] != settings:
            diff = {k: (state["settings"].get(k), v) for k, v in settings.items()
                    if state["settings"].get(k) != v}
            raise SystemExit(f"train: error: {ckpt_path} was made with other settings "
                             f"(checkpoint, now): {diff}; resume with the same options")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        g_data.set_state(state["g_data"])
        g_noise.set_state(state["g_noise"])
        torch.set_rng_state(state["torch_rng"])
        step, wall_before, cpu_before = state["step"], state["wall_s"], state["cpu_s"]
        sums, win_steps = state["window"]
        # Drop log lines past the checkpoint: those steps run again.
        if os.path.exists(log_path):
            with open(log_path) as f:
                lines = [ln for ln in f if json.loads(ln).get("step", 0) <= step]
            with open(log_path, "w") as f:
                f.writelines(lines)
        print(f"resumed from {ckpt_path} at step {step}", flush=True)
    elif args.resume:
        print(f"no checkpoint in {args.out}: starting from scratch", flush=True)
    else:
        if os.path.exists(ckpt_path):
            raise SystemExit(f"train: error: {ckpt_path} exists; pass --resume to continue it, "
                             "or choose another --out")
        open(log_path, "w").close()

    sampler = data.ClipSampler(data.TRAIN_IMAGES, out=args.crop)
    val = heldout_clips(args.crop)
    n_params = ae2d.parameter_count(model)
    print(f"ae2d ch={args.ch} ch_mult={args.ch_mult} num_res_blocks={args.num_res_blocks} "
          f"z_channels={args.z_channels}: {n_params:,} parameters; "
          f"{args.batch_clips} clips x {args.clip_frames} frames of {args.crop}x{args.crop} "
          f"per step; {args.steps} steps; {args.threads} threads", flush=True)

    t0_wall, t0_cpu = time.time(), time.process_time()
    win_wall, win_cpu, win_timed = time.time(), time.process_time(), 0
    model.train()
    stop = min(args.steps, args.stop_at or args.steps)
    while step < stop:
        step += 1
        lr = lr_at(step, args)
        for group in opt.param_groups:
            group["lr"] = lr
        x = sampler.batch(g_data, args.batch_clips, args.clip_frames)
        loss, l1, kl, logvar = vae_loss(model, x, g_noise, args.kl_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip).item()
        opt.step()
        sums["loss"] += loss.item()
        sums["l1"] += l1.item()
        sums["kl"] += kl.item()
        win_steps += 1
        win_timed += 1

        last = step == args.steps
        if step % args.log_every == 0 or last:
            now_wall, now_cpu = time.time(), time.process_time()
            s_per_step = (now_wall - win_wall) / win_timed
            cpu_per_step = (now_cpu - win_cpu) / win_timed
            entry = {"step": step, "lr": lr, "grad_norm": grad_norm,
                     "logvar_mean": logvar.mean().item(),
                     "s_per_step": s_per_step, "cpu_s_per_step": cpu_per_step,
                     **{k: v / win_steps for k, v in sums.items()}}
            eta = (args.steps - step) * s_per_step
            msg = (f"step {step}/{args.steps}  loss {entry['loss']:.4f}  l1 {entry['l1']:.4f}  "
                   f"kl {entry['kl']:.3f}  lr {lr:.2e}  {s_per_step:.2f} s/step "
                   f"(cpu {cpu_per_step:.2f})  eta {eta / 60:.0f} min")
            if step % args.eval_every == 0 or last:
                model.eval()
                p = evaluate_torch(model, val)
                model.train()
                entry["val_psnr"] = p
                msg += "  held-out PSNR " + " ".join(f"{k} {v:.2f}" for k, v in p.items())
            print(msg, flush=True)
            with open(log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
            sums, win_steps = dict.fromkeys(sums, 0.0), 0
            win_wall, win_cpu, win_timed = time.time(), time.process_time(), 0

        if step % args.ckpt_every == 0 or step == stop:
            save_checkpoint(ckpt_path, {
                "settings": settings, "step": step, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "g_data": g_data.get_state(),
                "g_noise": g_noise.get_state(), "torch_rng": torch.get_rng_state(),
                "window": (sums, win_steps),
                "wall_s": wall_before + time.time() - t0_wall,
                "cpu_s": cpu_before + time.process_time() - t0_cpu})

    if step < args.steps:
        print(f"stopped at step {step}; continue with --resume", flush=True)
        return
    wall = wall_before + time.time() - t0_wall
    cpu = cpu_before + time.process_time() - t0_cpu
    model.eval()
    scale, shift = fit_scale_shift(model, args)
    model.args["scale_factor"], model.args["shift_factor"] = scale, shift
    psnr = evaluate_torch(model, val)
    summary = {"parameters": n_params, "settings": settings, "wall_s": wall, "cpu_s": cpu,
               "scale_factor": scale, "shift_factor": shift, "heldout_psnr_torch": psnr}
    write_model(os.path.join(args.out, "model"), model, {
        "description": "vvae ae2d-tiny: a small Open-Sora/Flux-style 2D AutoEncoder trained by "
                       "tools/train/train.py",
        "training": json.dumps(settings, sort_keys=True)})
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    print(f"done: {args.steps} steps, {wall / 60:.1f} min wall, {cpu / 60:.1f} min cpu; "
          f"scale_factor {scale} shift_factor {shift}; model in {args.out}/model", flush=True)


# --- evaluation -----------------------------------------------------------------------------

def run_vvae(vvae, model_dir, clip_path, tmp, threads):
    z, rec = os.path.join(tmp, "z.safetensors"), os.path.join(tmp, "rec.safetensors")
    common = ["--model", model_dir, "-q", "--threads", str(threads)]
    subprocess.run([vvae, "encode", *common, "--input", clip_path, "--output", z], check=True)
    subprocess.run([vvae, "decode", *common, "--input", z, "--output", rec], check=True)
    return safetensors_io.load(rec)[0]["x"]


def write_sheet(path, pairs, frames=4):
    """A PNG: for each clip, its first `frames` frames over their reconstruction."""
    from PIL import Image as PILImage

    rows = []
    for x, rec in pairs:
        for clip in (x, rec):
            c = clip[0, :, :frames]  # (3, T, H, W)
            rows.append(torch.cat(list(c.unbind(1)), dim=2))
    sheet = torch.cat(rows, dim=1)
    pixels = to_uint8(sheet).to(torch.uint8).permute(1, 2, 0).numpy()
    PILImage.fromarray(pixels).save(path, optimize=True)


def cmd_evaluate(args):
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    paths = list(args.clip)
    if args.clips:
        paths += sorted(os.path.join(args.clips, f) for f in os.listdir(args.clips)
                        if f.endswith(".safetensors"))
    rows, pairs = [], []
    print(f"{'clip':<28} {'shape':<22} {'PSNR torch':>10} {'PSNR vvae':>10} "
          f"{'vvae vs torch':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            tensors, meta = safetensors_io.load(path)
            x = tensors["x"]
            with torch.no_grad():
                ref = model.decode_clip(model.encode_clip(x))
            row = {"clip": os.path.basename(path).removesuffix(".safetensors"),
                   "shape": list(x.shape), "psnr_torch": psnr8(x, ref),
                   "description": meta.get("description", "")}
            if args.vvae:
                rec = run_vvae(args.vvae, args.model, path, tmp, args.threads)
                row["psnr_vvae"] = psnr8(x, rec)
                row["rel_err_vvae_torch"] = ((rec - ref).abs().max() / ref.abs().max()).item()
            if args.write_ref:
                safetensors_io.save(path, {"x": x, "x_rec_torch": ref},
                                    {**meta, "x_rec_torch": f"PyTorch reconstruction by "
                                     f"{os.path.normpath(args.model)} (encode mode, decode)"})
            rows.append(row)
            pairs.append((x, rec if args.vvae else ref))
            print(f"{row['clip']:<28} {str(tuple(x.shape)):<22} {row['psnr_torch']:>10.2f} "
                  f"{row.get('psnr_vvae', float('nan')):>10.2f} "
                  f"{row.get('rel_err_vvae_torch', float('nan')):>14.2e}", flush=True)
    if args.sheet:
        write_sheet(args.sheet, pairs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
            f.write("\n")
    if args.vvae and any(r["rel_err_vvae_torch"] > 1e-4 for r in rows):
        raise SystemExit("evaluate: error: vvae and PyTorch differ by more than 1e-4")


# --- command line ---------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (checkpointed, resumable)")
    t.add_argument("--out", required=True, help="output directory: checkpoint.pt, log.jsonl, "
                   "summary.json and model/{config.json,weights.safetensors}")
    t.add_argument("--steps", type=int, default=3600, help="total optimisation steps")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt (same options; identical result)")
    t.add_argument("--stop-at", type=int, help="checkpoint and stop after this step (resume later)")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--lr-min-ratio", type=float, default=0.02)
    t.add_argument("--warmup", type=int, default=200)
    t.add_argument("--batch-clips", type=int, default=4, help="clips per step")
    t.add_argument("--clip-frames", type=int, default=2, help="frames per training clip")
    t.add_argument("--crop", type=int, default=64, help="frame size (pixels)")
    t.add_argument("--ch", type=int, default=64)
    t.add_argument("--ch-mult", type=int, nargs="+", default=[1, 1, 2, 2])
    t.add_argument("--num-res-blocks", type=int, default=1)
    t.add_argument("--z-channels", type=int, default=16)
    t.add_argument("--logvar-init", type=float, default=-4.0,
                   help="initial bias of the encoder's logvar output")
    t.add_argument("--zero-init", type=int, default=1,
                   help="1: the last conv of every residual branch starts at zero")
    t.add_argument("--kl-weight", type=float, default=5e-4, help="Open-Sora's VAELoss default")
    t.add_argument("--grad-clip", type=float, default=1.0)
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--eval-every", type=int, default=500)
    t.add_argument("--ckpt-every", type=int, default=250)
    t.add_argument("--scale-fit-batches", type=int, default=16)
    t.set_defaults(fn=cmd_train)

    h = sub.add_parser("heldout", help="write the held-out clips (deterministic)")
    h.add_argument("--out", required=True)
    h.add_argument("--crop", type=int, default=64)
    h.add_argument("--only", nargs="*", help="clip names to write (default: all)")
    h.set_defaults(fn=cmd_heldout)

    e = sub.add_parser("evaluate", help="8-bit PSNR of PyTorch (and vvae) reconstructions")
    e.add_argument("--model", required=True, help="directory with config.json, weights.safetensors")
    e.add_argument("--clips", help="directory of clip .safetensors files (tensor x)")
    e.add_argument("--clip", action="append", default=[], help="one clip file (repeatable)")
    e.add_argument("--vvae", help="path to the vvae binary: also reconstruct with vvae")
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--json", help="write the results here")
    e.add_argument("--sheet", help="write a PNG: each clip's first frames over their "
                   "reconstruction (vvae's when --vvae is given)")
    e.add_argument("--write-ref", action="store_true",
                   help="store the PyTorch reconstruction in each clip file as x_rec_torch")
    e.set_defaults(fn=cmd_evaluate)

    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
