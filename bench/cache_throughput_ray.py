#!/usr/bin/env python3
"""Clips per minute of the latent cache from Python: vvae.encode_manifest in one process
(THREADS threads) against vvae.ray.encode_dataset on a local Ray cluster (ACTORS actors x 1
thread), for the bundled model at 256px on N copies of samples/clip.mp4 (the workload of
bench/cache_throughput.sh: 33 frames, 144x256, resize_cropped to the 16:9 256px bucket 192x336;
each copy its own file, so its own key). Needs the package installed, and `pip install
"ray[data]"` for the Ray half. Prints the load average beside each figure (a loaded machine
gives lower figures).

    python3 bench/cache_throughput_ray.py [N] [THREADS] [ACTORS]
"""

import os
import pathlib
import shutil
import sys
import tempfile
import time

import vvae

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "ae2d-tiny"


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    actors = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        (work / "clips").mkdir()
        with open(work / "data.csv", "w") as f:
            f.write("path\n")
            for i in range(n):
                p = work / "clips" / f"clip{i}.mp4"
                shutil.copy(ROOT / "samples" / "clip.mp4", p)
                f.write(f"{p}\n")

        def report(what, seconds, shape):
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"{what}: {n} clips (z {shape}) in {seconds:.1f} s: {n * 60 / seconds:.1f} "
                  f"clips/min (load average {load}; {os.cpu_count()} CPUs)", flush=True)

        start = time.monotonic()
        s = vvae.encode_manifest(MODEL, work / "data.csv", work / "single", threads=threads,
                                 resolution="256px")
        assert s["encoded"] == n, s
        report(f"one process, {threads} threads", time.monotonic() - start,
               s["rows"][0]["latent_shape"])

        import ray
        import vvae.ray as vvae_ray

        ray.init(num_cpus=actors, include_dashboard=False, _node_ip_address="127.0.0.1",
                 object_store_memory=256 << 20, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        start = time.monotonic()
        s = vvae_ray.encode_dataset(work / "data.csv", work / "ray", model=MODEL,
                                    num_actors=actors, threads_per_actor=1, resolution="256px")
        assert s["encoded"] == n, s
        report(f"Ray, {actors} actors x 1 thread (incl. actor start-up)",
               time.monotonic() - start, s["rows"][0]["latent_shape"])
        # The two caches hold the same files.
        same = all((work / "single" / os.path.relpath(r["latents_path"], work / "ray")).read_bytes()
                   == pathlib.Path(r["latents_path"]).read_bytes() for r in s["rows"])
        print("caches identical:", same)
        ray.shutdown()


if __name__ == "__main__":
    main()
