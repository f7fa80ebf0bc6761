"""Thread counts, the GIL and Python threads."""

import threading

import numpy as np
import pytest
import vvae


@pytest.fixture
def restore_threads():
    yield
    vvae.set_num_threads(0)


def test_thread_count_applies_to_every_python_thread(restore_threads):
    vvae.set_num_threads(1)
    assert vvae.num_threads() == 1
    seen = []
    t = threading.Thread(target=lambda: seen.append(vvae.num_threads()))
    t.start()
    t.join()
    assert seen == [1]
    vvae.set_num_threads(0)  # all cores
    assert vvae.num_threads() >= 1


def test_results_do_not_depend_on_the_thread_count(hunyuan, rng, restore_threads):
    x = rng.uniform(-1, 1, (2, 3, 9, 32, 32)).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        vvae.set_num_threads(threads)
        z = hunyuan.encode_latent(x)
        results.append((z, hunyuan.decode_latent(z), hunyuan.encode_latent(x, sample=True, seed=3)))
    for z, dec, draw in results[1:]:
        np.testing.assert_allclose(z, results[0][0], rtol=0, atol=1e-5)
        np.testing.assert_allclose(dec, results[0][1], rtol=0, atol=1e-5)
        np.testing.assert_allclose(draw, results[0][2], rtol=0, atol=1e-5)


def test_the_gil_is_released_while_computing(ae2d, rng):
    # Between the progress reports of an encode on another thread, this thread keeps running
    # Python: it could not if the GIL were held while the network runs.
    x = rng.uniform(-1, 1, (1, 3, 12, 64, 64)).astype(np.float32)
    counter = [0]
    at_report = []
    done = threading.Event()

    def run():
        ae2d.encode_latent(x, progress=lambda i, n: at_report.append(counter[0]))
        done.set()

    t = threading.Thread(target=run)
    t.start()
    while not done.is_set():
        counter[0] += 1
    t.join()
    assert len(at_report) == 12
    assert at_report[-1] > at_report[0]


def test_concurrent_calls_match_serial_ones(hunyuan, rng):
    xs = [rng.uniform(-1, 1, (1, 3, 5, 16, 16)).astype(np.float32) for _ in range(3)]
    serial = [hunyuan.encode_latent(x) for x in xs]
    out = [None] * len(xs)

    def run(i):
        out[i] = hunyuan.encode_latent(xs[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(out, serial):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
