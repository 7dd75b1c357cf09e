"""Adaptive-fit variants side by side with true hits: group SDR per clip for wiener, the shipped
AdaptiveConfig and each variant given on the command line (used for issue 13's tuning, BENCHMARKS.md).

    python bench/masking_variants.py DATASET[,DATASET...] [--no-base] NAME:field=value,field=lo/hi ...

A value with a dot is a float, ``True``/``False`` a bool, ``lo/hi`` a pair, ``A+B`` (or ``A+``) a
tuple of names, else an int. Each config gets its own masker (the template length is fixed when one
is made). Prints the medians over clips per variant (and the mean over clips of the toms) and writes
the rows as JSON beside the working directory's ``masking-variants.json``.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idm_host.classes import GROUPS, group_of  # noqa: E402
from idm_host.engine import Separator  # noqa: E402
from idm_host.masking import AdaptiveConfig, AdaptiveMasker  # noqa: E402
from idm_host.train.evaluate import _merge_stems, dataset_clips, load_clip, window_sdr  # noqa: E402


def _value(v: str):
    if v in ("True", "False"):
        return v == "True"
    if "+" in v:
        return tuple(u for u in v.split("+") if u)
    if "/" in v:
        return tuple(float(u) for u in v.split("/"))
    return float(v) if "." in v else int(v)


def main(argv: list[str]) -> int:
    base = "--no-base" not in argv
    argv = [a for a in argv if a != "--no-base"]
    variants: dict[str, AdaptiveConfig | None] = {"wiener": None, "adaptive": AdaptiveConfig()} if base else {}
    for spec in argv[1:]:
        name, _, kv = spec.partition(":")
        kw = dict((k, _value(v)) for k, v in (item.split("=") for item in kv.split(",") if item))
        variants[name] = replace(AdaptiveConfig(), **kw)
    sep = Separator("default", "cpu")
    rows = []
    for ds in argv[0].split(","):
        clips, classes = dataset_clips(ds)
        groups = tuple(g for g in GROUPS if any(group_of(c) == g for c in classes))
        for folder in clips:
            clip = load_clip(folder, classes)
            a, _enc, _tr, kit = sep.prepare(clip.mixture, sample_rate=clip.sample_rate)
            ref_g = _merge_stems(clip.stems.astype(np.float64), classes, groups)
            tr = sep._check_transcription(clip.transcription)
            for name, cfg in variants.items():
                if cfg is not None:  # a new masker: its template length comes from the config
                    sep._adaptive = AdaptiveMasker(sep._adaptive.stft, sep.sample_rate, cfg, sep.classes)
                t0 = time.process_time()
                est = np.zeros((len(classes), a.n_frames))
                for start, st, _res in sep.iter_blocks(a, tr, kit, masking="wiener" if cfg is None else "adaptive",
                                                       user_hits=True):
                    for i, c in enumerate(classes):
                        est[i, start:start + st.shape[2]] = st[sep.classes.index(c)].mean(0)
                row = {"dataset": Path(ds).name, "clip": folder.name, "variant": name,
                       "cpu_s": time.process_time() - t0}
                e_g = _merge_stems(est, classes, groups)
                for i, g in enumerate(groups):
                    w = window_sdr(ref_g[i], e_g[i], clip.sample_rate)
                    row[g] = float(np.nanmedian(w)) if np.isfinite(w).any() else None
                rows.append(row)
            print(folder.name, file=sys.stderr, flush=True)
    Path("masking-variants.json").write_text(json.dumps(rows, indent=1))
    for name in variants:
        sel = [r for r in rows if r["variant"] == name]
        med = {g: float(np.median([r[g] for r in sel if r.get(g) is not None])) for g in ("KD", "SD", "HH", "TT", "CY")}
        tt = [r["TT"] for r in sel if r.get("TT") is not None]
        print(f"{name:12s} " + " ".join(f"{g} {v:5.2f}" for g, v in med.items())
              + f" ALL {np.mean(list(med.values())):.2f} TT-mean {np.mean(tt):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
