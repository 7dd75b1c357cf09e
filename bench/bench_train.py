"""Training: data rendering speed and the cost of one training step

Measures the on-the-fly data pipeline (6 s clips from the project's synthetic kit and the groove
generator) and one optimiser step of the full-size IDM (IDM-SPEC hyper-parameters, 542 k
parameters) with the spec's recipe, batch 1 x 6 s, on the machine's default device. There is no
target in the issue for these; they size how long a training run takes.
"""
from __future__ import annotations

import time


def run() -> list[dict]:
    import numpy as np
    import torch

    from idm_host.engine import pick_device
    from idm_host.train.data import Augment, ClipStream
    from idm_host.train.kits import synthetic_kit
    from idm_host.train.losses import IDMLoss
    from idm_host.train.loop import batch_for_step, build_model, to_tensors, train_step
    from idm_host.train.patterns import PatternSource

    rows = []
    kits = [synthetic_kit(0), synthetic_kit(1)]
    for with_stems in (False, True):
        stream = ClipStream(kits, PatternSource(), duration_s=6.0, seed=0, augment=Augment(room_prob=0.3, compress_prob=0.3),
                            with_stems=with_stems)
        rng = np.random.default_rng(0)
        stream.clip(rng)
        t = time.perf_counter()
        n = 20
        for _ in range(n):
            stream.clip(rng)
        ms = 1000 * (time.perf_counter() - t) / n
        rows.append({"name": f"render one 6 s clip ({'mixture + stems' if with_stems else 'mixture only'})",
                     "value": ms, "unit": "ms", "note": "augmentation: room 30 %, compression 30 %, gain 80 %"})
    device = pick_device("auto")
    model, _ = build_model(tuple(__import__("idm_host.classes", fromlist=["IDM_CLASSES"]).IDM_CLASSES), ("a", "b"))
    model.to(device)
    stream = ClipStream(kits, PatternSource(), duration_s=6.0, seed=0)
    x, onsets, kit_ids = to_tensors(batch_for_step(stream, 0, 0, 1), device)
    loss_fn = IDMLoss().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    times = []
    for _ in range(2):
        t = time.perf_counter()
        train_step(model, loss_fn, opt, x, onsets, kit_ids)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    rows.append({"name": "full-size IDM training step, batch 1 x 6 s (second of two)", "value": times[-1], "unit": "s",
                 "note": f"device {device}, {torch.get_num_threads()} threads; first step {times[0]:.1f} s"})
    return rows
