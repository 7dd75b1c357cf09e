"""Parity margins: how close each golden check comes to its float32 tolerance, under other CPU kernels (issue 10)

Each row runs tests/golden/test_parity.py's own checks in a child process with the CPU kernels
varied: torch's vector code path (``ATEN_CPU_CAPABILITY``), MKL's instruction set
(``MKL_ENABLE_INSTRUCTIONS``) and reproducibility mode (``MKL_CBWR``), numpy's OpenBLAS core type
(``OPENBLAS_CORETYPE``) and the thread count (``OMP_NUM_THREADS``). The value is the largest
``max|ours - golden| / tolerance`` over the encoder outputs (log-mel, frame features, onset
logits, velocities, kit logits and embedding, track gains) and the one-shots, for our float32 run;
1.0 would fail. The golden file's own excess against a float64 evaluation does not depend on the
kernels. The last row is the smallest excess among weights scaled by 1 + 2**-10 (> 1: caught).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

VARIANTS = {
    "this CPU's defaults": {},
    "ATEN_CPU_CAPABILITY=default (no SIMD kernels)": {"ATEN_CPU_CAPABILITY": "default"},
    "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "MKL_ENABLE_INSTRUCTIONS=SSE4_2": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
    "OPENBLAS_CORETYPE=Prescott, MKL_CBWR=COMPATIBLE": {"OPENBLAS_CORETYPE": "Prescott", "MKL_CBWR": "COMPATIBLE"},
}

CHILD = r"""
import copy, json, os, sys
import numpy as np, torch
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "golden"))
import test_parity as T
from idm_host.model.checkpoints import convert_official
ref = sys.argv[2]
g = dict(np.load(os.path.join(ref, "idm-44-train-kits.golden-demo3s.npz")))
m = convert_official(os.path.join(ref, "idm-44-train-kits.ckpt"))
m64 = copy.deepcopy(m).double()
P = T.frame_power(g["input"])
x = torch.from_numpy(g["input"])[None]
with torch.inference_mode():
    e32 = m.encode(x)
    e64 = m64.encode(x.double())
ours = T.encoder_excess(e32, g, P)
ours["one_shots"] = T.excess(T.synth(m, g), g["one_shots"], T.network_tol(g["one_shots"]))
golden = T.encoder_excess(e64, g, P)
caught = []
if len(sys.argv) > 3:
    for name in ["backbone.stages.2.4.expand.weight", "transcription.onset.weight", "kit_classifier.out.weight", "track_gains.w3"]:
        mm = copy.deepcopy(m64)
        with torch.no_grad():
            mm.get_parameter(name).mul_(1 + 2 ** -10)
        with torch.inference_mode():
            caught.append(max(T.encoder_excess(mm.encode(x.double()), g, P).values()))
print(json.dumps({"ours": ours, "golden": golden, "caught": caught}))
"""


def run() -> list[dict]:
    ref = os.environ.get("IDM_HOST_REFERENCE") or str(REPO.parent / "shared" / "reference")
    rows = []
    golden = None
    caught = None
    for i, (label, env) in enumerate(VARIANTS.items()):
        args = [sys.executable, "-c", CHILD, str(REPO), ref] + (["perturb"] if i == 0 else [])
        r = subprocess.run(args, env=dict(os.environ, **env), capture_output=True, text=True, cwd=str(REPO))
        if r.returncode:
            rows.append({"name": label, "value": "error", "unit": "", "note": r.stderr.strip()[-300:]})
            continue
        res = json.loads(r.stdout.strip().splitlines()[-1])
        worst = max(res["ours"], key=res["ours"].get)
        rows.append({"name": f"our float32 run, {label}", "value": res["ours"][worst], "unit": "x tol",
                     "target": "< 1", "ok": res["ours"][worst] < 1.0,
                     "note": f"worst: {worst}; " + ", ".join(f"{k} {v:.3f}" for k, v in res["ours"].items())})
        golden = golden or res["golden"]
        caught = caught or res["caught"]
    if golden:
        worst = max(golden, key=golden.get)
        rows.append({"name": "golden file vs float64 evaluation (kernel-independent)", "value": golden[worst],
                     "unit": "x tol", "target": "< 1", "ok": golden[worst] < 1.0,
                     "note": ", ".join(f"{k} {v:.3f}" for k, v in golden.items())})
    if caught:
        rows.append({"name": "a weight tensor scaled by 1 + 2**-10: smallest excess", "value": min(caught),
                     "unit": "x tol", "target": "> 1 (caught)", "ok": min(caught) > 1.0,
                     "note": "backbone, onset head, kit classifier, track gains: "
                             + ", ".join(f"{c:.1f}" for c in caught)})
    return rows
