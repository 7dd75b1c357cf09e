"""Engine: end-to-end separation speed and memory (issue 2)

Measures, in one run on this machine: a 3-minute stereo mix (the project's example kit, 75 bars at
100 BPM) through ``Separator.analyze`` cold (one-shots synthesised) and warm (one-shots cached), its
stages, the same mix through an official-style pipeline (whole-signal encoder, full-length FFT
sequencer, all 9 classes Wiener-masked in one STFT, one-shots synthesised every call) for the ratio,
and the peak RSS of ``idm-host separate`` on a 10-minute stereo file in a subprocess.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REF = Path(os.environ.get("IDM_HOST_REFERENCE") or Path(__file__).resolve().parents[2] / "shared" / "reference")


def _model(cache: Path) -> str:
    os.environ["IDM_HOST_MODELS"] = str(cache)
    from idm_host.installs import import_official
    from idm_host.models import default_weights

    if default_weights() is not None:
        return "default"
    import_official(REF / "idm-44-train-kits.ckpt")
    return "idm-44-train-kits"


def _official_style(sep, audio) -> float:
    """The official flow with our modules: no chunking, no caching, dense FFT sequencing."""
    from idm_host.dsp import WienerFilter, peak_pick

    t0 = time.perf_counter()
    with torch.inference_mode():
        x = torch.from_numpy(audio.mono())[None]
        out = sep.model.encode(x)
        picks = peak_pick(torch.sigmoid(out["onset_logits"][0]).numpy())
        shots = sep.model.synthesize(out["kit_embedding"], sep.noise()[None])
        act = torch.from_numpy(picks.astype(np.float32))[None] * out["velocity"]
        stems = sep.model.sequence(act, shots, out["track_gains"], x.shape[-1])[0]
        WienerFilter().apply(torch.from_numpy(audio.samples), stems)
    return time.perf_counter() - t0


def run() -> list[dict]:
    from idm_host.demo import render_loop
    from idm_host.engine import Separator
    from idm_host.types import Audio

    rows: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="idm-bench-"))
    try:
        name = _model(tmp / "cache")
        audio = Audio(render_loop(bars=75), 44100)
        dur = audio.duration_s
        sep = Separator(name, device="cpu")
        t0 = time.perf_counter()
        enc = sep.encode(audio)
        t_enc = time.perf_counter() - t0
        tr = sep.transcription_from(enc)
        t0 = time.perf_counter()
        kit = sep.kit_from(enc)
        t_synth = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in sep.iter_blocks(audio, tr, kit):
            pass
        t_mask = time.perf_counter() - t0
        warm = []
        for _ in range(2):  # fresh object each time: memory cache empty, disk cache warm; best of 2
            sep2 = Separator(name, device="cpu")
            t0 = time.perf_counter()
            sep2.analyze(audio)
            warm.append(time.perf_counter() - t0)
            del sep2
        t_warm = min(warm)
        t_cold = t_enc + t_synth + t_mask
        t_off = _official_style(sep, audio)
        rows += [
            {"name": "3-min mix: encoder (chunked)", "value": t_enc, "unit": "s"},
            {"name": "3-min mix: one-shot synthesis (cold)", "value": t_synth, "unit": "s"},
            {"name": "3-min mix: sequencing + Wiener masks", "value": t_mask, "unit": "s"},
            {"name": "3-min mix: separate, cold (sum of stages)", "value": t_cold, "unit": "s", "target": "<= 4 s",
             "ok": t_cold <= 4.0, "note": f"{dur / t_cold:.1f}x real time"},
            {"name": "3-min mix: separate, warm (one-shots cached)", "value": t_warm, "unit": "s", "target": "<= 4 s",
             "ok": t_warm <= 4.0, "note": f"{dur / t_warm:.1f}x real time; best of 2 ({warm[0]:.2f}, {warm[1]:.2f} s)"},
            {"name": "3-min mix: official-style pipeline", "value": t_off, "unit": "s",
             "note": f"ours cold is {t_off / t_cold:.2f}x faster, warm {t_off / t_warm:.2f}x"},
            {"name": "hits found", "value": tr.n_hits, "unit": "", "note": f"model '{name}' on the project's example kit"},
        ]
        # 10-minute stereo file through the CLI, peak RSS of the child process
        from idm_host.audio import save_audio

        ten = np.tile(audio.samples, (1, 4))[:, : 600 * 44100]
        long_path = save_audio(tmp / "ten-minutes.wav", ten, 44100, bit_depth=16)
        del ten
        env = dict(os.environ, IDM_HOST_MODELS=str(tmp / "cache"))
        # The child reports its own peak (VmHWM of its memory image after exec): getrusage's
        # RUSAGE_CHILDREN would count this large bench process's pages, inherited at fork.
        code = ("import sys; from idm_host.cli import main; rc = main(sys.argv[1:]); "
                "print('VmHWM', open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr); "
                "sys.exit(rc)")
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", code, "separate", str(long_path), "--out", str(tmp / "out"),
                            "--model", name, "--quiet"], env=env, capture_output=True, text=True)
        t_long = time.perf_counter() - t0
        hwm = [line.split()[1] for line in r.stderr.splitlines() if line.startswith("VmHWM")]
        rss_mb = int(hwm[0]) / 1024 if hwm else float("nan")
        rows += [
            {"name": "10-min stereo file: idm-host separate (process)", "value": t_long, "unit": "s",
             "note": "ok" if r.returncode == 0 else r.stderr.strip()[-200:]},
            {"name": "10-min stereo file: peak RSS", "value": rss_mb, "unit": "MB", "target": "<= 1500 MB",
             "ok": rss_mb <= 1500},
        ]
        if torch.cuda.is_available():
            gsep = Separator(name, device="cuda")
            gsep.analyze(audio)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            gsep.analyze(audio)
            torch.cuda.synchronize()
            rows.append({"name": "3-min mix on GPU (warm)", "value": time.perf_counter() - t0, "unit": "s",
                         "target": "<= 0.3 s"})
        else:
            rows.append({"name": "GPU", "value": "n/a", "unit": "", "note": "no CUDA GPU on this machine"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows
