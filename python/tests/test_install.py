"""The installed package: importable from anywhere, alone or beside torch."""

import os
import pathlib
import subprocess
import sys

import pytest

SOURCE = pathlib.Path(__file__).resolve().parents[1] / "vvae"


def run(code, cwd):
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={k: v for k, v in os.environ.items()
                                            if k != "PYTHONPATH"})


def test_import_outside_the_source_tree(tmp_path):
    r = run("import vvae; print(vvae.__file__); print(vvae.__version__)", tmp_path)
    assert r.returncode == 0, r.stderr
    where = pathlib.Path(r.stdout.splitlines()[0]).resolve()
    assert SOURCE not in where.parents  # the installed copy, not python/vvae
    assert r.stdout.splitlines()[1].count(".") == 2


@pytest.mark.parametrize("order", ["import torch, vvae", "import vvae, torch"])
def test_beside_torch(tmp_path, order):
    # torch ships its own libgomp.so.1; vvae's OpenMP code must run with either loaded first.
    pytest.importorskip("torch")
    code = (f"{order}\n"
            "import numpy as np\n"
            "from vvae import _vvae\n"
            f"m = _vvae.Model.load(model={str(pathlib.Path(__file__).resolve().parents[2] / 'tests/data/golden/ae2d_small')!r})\n"
            "x = torch.rand(1, 3, 2, 16, 16) * 2 - 1\n"
            "vvae.set_num_threads(2)\n"
            "print(m.encode(x)['z'].shape, torch.get_num_threads() > 0)\n")
    r = run(code, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "torch.Size([1, 4, 2, 8, 8]) True" in r.stdout
