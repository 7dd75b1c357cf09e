"""Masking modes, and the "adaptive" mode: score-informed NMFD with templates fitted to the mix.

The engine's stems are soft masks on the real mixture. The modes differ in what the masks are cut
from:

* ``"wiener"``: magnitude-ratio masks ``|S_k| / sum_j |S_j|`` of the synthetic stems (the model's
  one-shots placed at the hits);
* ``"power"``: power-ratio masks ``|S_k|^2 / sum_j |S_j|^2`` of the same synthetic stems;
* ``"adaptive"``: power-ratio masks of per-class reconstructions whose spectro-temporal templates
  were fitted to the mixture (:class:`AdaptiveMasker`), plus a free residual part;
* ``"none"``: the synthetic stems themselves, no mask;
* ``"auto"``: :func:`resolve_mode` picks one per input (the rule is documented there).

The adaptive model (NMFD, non-negative matrix factor deconvolution) of a magnitude spectrogram
``V [F, N]`` (STFT 1024/256, Hann, as the Wiener masks use)::

    V ~ sum_k sum_t W_k[:, t] * H_k[n - t]  +  B @ G

``W_k [F, T]``: the template of class k (0.7 s after the onset and ``pre_frames`` before it, so that
hits that sit a frame or two early or late are still explained), initialised from the STFT
magnitude of the model's one-shot. ``H_k``: fixed by the transcription (each hit's track gain x
velocity, split between the two frames around its sample position). ``B [F, R], G [R, N]``: a free
residual part (no hits, no template) that soaks up what the hits do not explain, so that missed hits
land in the residual stem rather than in another class. The templates and ``B`` are fitted by
multiplicative updates under the KL divergence; ``G`` is then solved frame by frame with the
templates fixed, which is what makes the result the same whether the input is processed in one
block or many. The toms' templates may not grow above 300 Hz past 4x their one-shot's (at the fitted
level; :attr:`AdaptiveConfig.max_gain`): with a few hits per clip under a ringing ride they would
otherwise learn the ride.

Because ``H_k`` is a sparse train of hits, the convolution ``W_k * H_k`` is computed as a product
with a sparse Toeplitz operator (:func:`hit_operator`): its cost is hits x template length x bins,
where FFT convolution would transform every bin of every frame for each class and iteration
(an estimate from the operation counts; the FFT variant was not built to be timed).

Long inputs: the templates are fitted on at most :attr:`AdaptiveConfig.fit_max_s` seconds (the
whole input when shorter, else evenly spaced excerpts chosen from the input length alone), then
applied block by block with the engine's block margins, so memory is bounded by the block and the
fit excerpts. Stereo: the templates are fitted on the mid, then refined on each channel, and each
channel is masked with its own reconstructions.

Everything here is deterministic: no random initialisation, fixed iteration counts.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
import torch

if TYPE_CHECKING:  # scipy.sparse (~1 s to import on a loaded machine) only for the adaptive mode
    import scipy.sparse as sp

from .classes import group_of
from .dsp import WienerFilter
from .errors import IdmError

#: The masking modes the engine accepts.
MODES = ("auto", "wiener", "power", "adaptive", "none")
#: Mask exponent of each masked mode (``masks = V_k^p / sum_j V_j^p``).
EXPONENTS = {"wiener": 1.0, "power": 2.0, "adaptive": 2.0}
HitArrays = Sequence[tuple[np.ndarray, np.ndarray]]  # per class: sample positions (int64), amplitudes


def check_mode(masking: str) -> str:
    if masking not in MODES:
        raise IdmError(f"masking must be one of {', '.join(MODES)}, not {masking!r}")
    return masking


def resolve_mode(masking: str, *, user_hits: bool) -> str:
    """The concrete mode for ``masking`` (``"auto"`` resolved).

    The rule for ``"auto"``, measured on the validation kits (BENCHMARKS.md, "Masking modes"): the
    adaptive masks when the hits are the user's (an override, "Re-separate with my edits"), the
    power-ratio masks for the model's own hits. With true hits the fitted templates gain 3.3-8.5 dB
    (mean of the group medians) over the synthetic-stem masks and lead in every class; with the
    model's hits they are ahead overall too but lose up to 1 dB in a class against power (rumpf's
    kicks, TimGM6mb's toms: hits the model missed leave energy that the found classes' templates
    absorb), so power, the cheaper, is kept there.

    Args:
        user_hits: the transcription was given rather than the model's own.
    """
    check_mode(masking)
    if masking != "auto":
        return masking
    return "adaptive" if user_hits else "power"


# ------------------------------------------------------------------ the adaptive model
@dataclass(frozen=True)
class AdaptiveConfig:
    """Settings of the adaptive fit (the defaults were chosen on the validation kits)."""

    #: template length after the onset (s), and frames before it (for hits a frame or two off).
    template_s: float = 0.7
    pre_frames: int = 2
    #: multiplicative updates on the mid, then per channel (stereo).
    n_iter: int = 30
    channel_iter: int = 4
    #: free residual components, their L1 weight, and the per-frame updates of their activations.
    n_residual: int = 6
    residual_penalty: float = 0.3
    residual_iter: int = 10
    #: templates are fitted on at most this much audio (s), in excerpts of ``fit_window_s``.
    fit_max_s: float = 60.0
    fit_window_s: float = 20.0
    #: floor added to the initial templates, relative to their peak (lets updates grow any bin).
    floor: float = 1e-3
    #: mask exponent.
    exponent: float = 2.0
    #: largest spectral correction of a corrected one-shot (linear gain).
    max_correction: float = 100.0
    #: largest gain of a template bin above ``max_gain_above_hz`` over the class's initial template
    #: at the fitted level (the initial template times the least-squares gain of the fitted one onto
    #: it), enforced after each update, for the classes of ``max_gain_groups`` (0: no limit). A tom
    #: is heard a few times per clip, often under a ride or crash that rings through it: unlimited,
    #: its template learns that wash; below the cut-off it may still change freely (a kit's toms
    #: are tuned lower or higher than the model's).
    max_gain: float = 4.0
    #: the groups (``idm_host.classes.GROUPS``) whose templates ``max_gain`` limits (empty: all).
    max_gain_groups: tuple[str, ...] = ("TT",)
    max_gain_above_hz: float = 300.0


@dataclass
class AdaptivePlan:
    """What the fit produced: templates per channel, residual bases, and the fit's divergence.

    Attributes:
        templates: ``[C, K, F, T]`` fitted templates per channel (``T`` includes ``pre_frames``).
        bases: ``[C, F, R]`` residual bases per channel (columns sum to 1).
        initial: ``[K, F, T]`` the initial templates (the one-shots' STFT magnitudes + floor).
        mid_templates: ``[K, F, T]`` the templates fitted on the mid.
        divergence: the KL divergence of the mid fit before the first update and after each.
    """

    templates: np.ndarray
    bases: np.ndarray
    initial: np.ndarray
    mid_templates: np.ndarray
    divergence: list[float] = field(default_factory=list)


def kl_divergence(v: np.ndarray, vh: np.ndarray, eps: float = 1e-12) -> float:
    """Generalised KL divergence ``sum v log(v / vh) - v + vh``."""
    v = np.asarray(v, np.float64)
    vh = np.asarray(vh, np.float64) + eps
    return float(np.sum(np.where(v > 0, v * np.log(np.maximum(v, eps) / vh), 0.0) - v + vh))


def hit_activations(hits: HitArrays, hop: int, pre_frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per class, activation frames and values: a hit at sample ``p`` with amplitude ``a`` is split
    between frames ``p // hop`` and the next by its position between them, minus ``pre_frames``."""
    out = []
    for pos, amp in hits:
        pos = np.asarray(pos, dtype=np.int64)
        amp = np.asarray(amp, dtype=np.float32)
        q = pos // hop - pre_frames
        frac = (pos % hop).astype(np.float32) / np.float32(hop)
        frames = np.concatenate([q, q + 1])
        vals = np.concatenate([amp * (1 - frac), amp * frac])
        keep = vals != 0
        out.append((frames[keep], vals[keep].astype(np.float32)))
    return out


def hit_operator(acts: list[tuple[np.ndarray, np.ndarray]], n_templ: int, n0: int, n_frames: int
                 ) -> sp.csr_matrix:
    """The sparse Toeplitz operator ``M [K*T, N]`` with ``M[k*T + t, n] = H_k[n0 + n - t]``: the
    reconstruction of frames ``[n0, n0 + N)`` is ``W_flat @ M`` with ``W_flat [F, K*T]``."""
    import scipy.sparse as sp

    rows, cols, vals = [], [], []
    t = np.arange(n_templ, dtype=np.int64)
    for k, (fr, v) in enumerate(acts):
        sel = (fr > n0 - n_templ) & (fr < n0 + n_frames)
        if not sel.any():
            continue
        c = fr[sel, None] + t[None, :] - n0
        ok = (c >= 0) & (c < n_frames)
        rows.append(np.broadcast_to(k * n_templ + t[None, :], c.shape)[ok])
        cols.append(c[ok])
        vals.append(np.broadcast_to(v[sel, None], c.shape)[ok])
    shape = (len(acts) * n_templ, n_frames)
    if not rows:
        return sp.csr_matrix(shape, dtype=np.float32)
    m = sp.coo_matrix((np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))),
                      shape=shape)
    return m.tocsr()  # duplicates summed, in a fixed order


def _mm_nr_rf(g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``g [N, R] @ b [R, F]`` without BLAS. The products here have a tiny inner dimension (R), for
    which a threaded BLAS spends far more CPU on its threads than on the work (measured: ten times
    the CPU time of one thread on the project's 2 cores); numpy's own einsum loop runs on one."""
    return np.einsum("nr,rf->nf", g, b)


class _OneTorchThread:
    """Torch on one thread while a fit runs. Its dense products (frames x bins by the six residual
    components) and its few STFTs are too small for a second thread to pay: on the project's 2
    cores, with other work running, one thread did such a product in 0.3-0.45 ms of CPU where two
    took 7.6-12 ms and numpy's einsum loop 1.2-1.7 ms, and |STFT| of 10 s of stereo took 20 against
    34 ms (BENCHMARKS.md, "Masking modes"). The setting is the process's: fits that overlap (from
    several threads) share one save and restore, so the count in force before the first is back
    when the last ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._saved = 1

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._active == 0:
                self._saved = torch.get_num_threads()
                torch.set_num_threads(1)
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    torch.set_num_threads(self._saved)


_one_torch_thread = _OneTorchThread()


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for float32 arrays (any strides) through torch (see :func:`_one_torch_thread`)."""
    return (torch.from_numpy(a) @ torch.from_numpy(b)).numpy()


def _flat(w: np.ndarray) -> np.ndarray:
    """Templates ``[K, F, T]`` -> ``[K*T, F]`` (row ``k*T + t`` is ``W_k[:, t]``)."""
    k, f, t = w.shape
    return np.ascontiguousarray(w.transpose(0, 2, 1).reshape(k * t, f))


def _unflat(wt: np.ndarray, k: int) -> np.ndarray:
    kt, f = wt.shape
    return np.ascontiguousarray(wt.reshape(k, kt // k, f).transpose(0, 2, 1))


@dataclass
class _Segment:
    """One excerpt's spectra, frames first: ``vt [N, F]``, the hit operator and its transpose."""

    vt: np.ndarray
    m: sp.csr_matrix
    mt: sp.csr_matrix

    def recon(self, wt: np.ndarray) -> np.ndarray:
        """The class part of the model, ``[N, F]``."""
        return np.asarray(self.mt @ wt, dtype=np.float32)


class AdaptiveMasker:
    """Fits templates to a mixture (:meth:`fit`) and masks it block by block (:meth:`apply`).

    Args:
        stft: the engine's :class:`~idm_host.dsp.WienerFilter` (its STFT/iSTFT are used).
        sample_rate: in Hz.
        config: :class:`AdaptiveConfig`.
        classes: the class of each template (the model's order); needed when
            :attr:`AdaptiveConfig.max_gain_groups` names groups (the engine passes its classes).
    """

    def __init__(self, stft: WienerFilter, sample_rate: int, config: AdaptiveConfig | None = None,
                 classes: Sequence[str] | None = None):
        self.stft = stft
        self.classes = tuple(classes) if classes is not None else None
        self.sample_rate = sample_rate
        self.config = config or AdaptiveConfig()
        self.hop = stft.hop
        self.n_templ = self.config.pre_frames + int(round(self.config.template_s * sample_rate / self.hop))
        self.eps = np.float32(1e-10)

    # -------------------------------------------------------------- spectra
    def _mag(self, x: np.ndarray) -> np.ndarray:
        """``|STFT| [C, F, N]`` of ``x [C, T]`` (float32)."""
        with torch.inference_mode():
            return self.stft.stft(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).abs().numpy()

    def initial_templates(self, one_shots: np.ndarray) -> np.ndarray:
        """``[K, F, T]``: STFT magnitudes of the one-shots, delayed by ``pre_frames``, plus a floor."""
        p, t = self.config.pre_frames, self.n_templ
        length = max(one_shots.shape[1], (t + 1) * self.hop)
        padded = np.zeros((one_shots.shape[0], p * self.hop + length), dtype=np.float32)
        padded[:, p * self.hop:p * self.hop + one_shots.shape[1]] = one_shots
        w = self._mag(padded)[:, :, :t]
        peak = float(w.max()) if w.size else 0.0
        return (w + np.float32(self.config.floor * (peak if peak > 0 else 1.0))).astype(np.float32)

    def fit_excerpts(self, n_samples: int) -> list[tuple[int, int]]:
        """Sample ranges the templates are fitted on (frame-aligned): the whole input, or evenly
        spaced excerpts when it is longer than ``fit_max_s``. Depends on the input length alone."""
        cfg = self.config
        if n_samples <= cfg.fit_max_s * self.sample_rate:
            return [(0, n_samples)]
        win = int(cfg.fit_window_s * self.sample_rate) // self.hop * self.hop
        count = max(1, int(cfg.fit_max_s // cfg.fit_window_s))
        last = (n_samples - win) // self.hop
        starts = [int(round(i * last / max(1, count - 1))) * self.hop for i in range(count)]
        return [(s, n_samples if i == count - 1 else min(n_samples, s + win)) for i, s in enumerate(starts)]

    def _segments(self, x: np.ndarray, acts, ranges) -> list[list[_Segment]]:
        """Per excerpt: the mid's segment, then each channel's (a mono input has one, which is its
        mid). A segment is ``|STFT|`` of its frames (frames first) and the excerpt's hit operator,
        which every channel shares; the mid and the channels are transformed in one call."""
        margin = 4 * self.hop
        out = []
        n = x.shape[-1]
        for a, b in ranges:
            sa, sb = max(0, a - margin), min(n, b + margin)
            part = x[:, sa:sb]
            mag = self._mag(np.concatenate([part.mean(axis=0, keepdims=True), part]) if len(part) > 1 else part)
            lo = (a - sa) // self.hop
            hi = lo + (-(-(b - a) // self.hop) + (1 if b == n else 0))
            mag = mag[:, :, lo:min(hi, mag.shape[-1])]
            m = hit_operator(acts, self.n_templ, a // self.hop, mag.shape[-1])
            mt = m.T.tocsr()
            out.append([_Segment(np.ascontiguousarray(mag[c].T), m, mt) for c in range(mag.shape[0])])
        return out

    def _init_bases(self, v: np.ndarray) -> np.ndarray:
        """``[F, R]``: the mean spectrum weighted towards R log-spaced bands (columns sum to 1)."""
        f = v.shape[0]
        r = self.config.n_residual
        mean = v.mean(axis=1) + self.eps
        edges = np.unique(np.geomspace(1, f, r + 1).astype(int))
        b = np.full((f, r), 0.1, dtype=np.float32)
        for i in range(r):
            lo, hi = edges[min(i, len(edges) - 2)], edges[min(i + 1, len(edges) - 1)]
            b[lo - 1 if i == 0 else lo:hi, i] = 1.0
        b *= mean[:, None]
        return (b / b.sum(axis=0, keepdims=True)).astype(np.float32)

    def _residual_init(self, vt: np.ndarray, r: int) -> np.ndarray:
        """Initial residual activations ``[N, R]``: a tenth of each frame's mean magnitude."""
        return np.repeat(vt.mean(axis=1, keepdims=True) * np.float32(0.1), r, axis=1)

    def _iterate(self, segs: list[_Segment], w: np.ndarray, b: np.ndarray, n_iter: int,
                 record: list[float] | None = None, initial: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Multiplicative KL updates of the templates ``w [K, F, T]``, the residual bases ``b [F, R]``
        and the residual activations (hit activations fixed) over the excerpts ``segs``.

        All three are updated from the same ratio ``V / V_hat`` each iteration (one reconstruction
        per iteration); the residual activations carry an L1 penalty."""
        cfg = self.config
        k = w.shape[0]
        eps = self.eps
        shrink = np.float32(1.0 / (1.0 + cfg.residual_penalty))
        wt = _flat(w)
        bt = np.ascontiguousarray(b.T)  # [R, F]
        gts = [self._residual_init(s.vt, bt.shape[0]) for s in segs]  # [N, R]
        den = np.sum([np.asarray(s.m.sum(axis=1), dtype=np.float32).ravel() for s in segs], axis=0)
        rows = np.flatnonzero(den > 0)
        inv_den = (np.float32(1.0) / den[rows])[:, None]
        cap = _flat(initial) if cfg.max_gain > 0 and initial is not None else None
        limited = self._limited(k) if cap is not None else []  # once, before the updates

        def model(s: _Segment, gt: np.ndarray) -> np.ndarray:
            vh = s.recon(wt)
            vh += _mm(gt, bt)
            vh += eps
            return vh

        if record is not None:
            record.append(sum(kl_divergence(s.vt, model(s, g)) for s, g in zip(segs, gts)))
        for _ in range(n_iter):
            num = np.zeros_like(wt)
            num_b = np.zeros_like(bt)
            den_b = np.zeros((bt.shape[0], 1), dtype=np.float32)
            for i, s in enumerate(segs):
                ratio = model(s, gts[i])
                np.divide(s.vt, ratio, out=ratio)
                num += np.asarray(s.m @ ratio, dtype=np.float32)
                num_b += _mm(gts[i].T, ratio)
                den_b += gts[i].sum(axis=0)[:, None]
                gts[i] = gts[i] * _mm(ratio, bt.T) * shrink
            wt[rows] *= num[rows] * inv_den
            if cap is not None:
                self._limit(wt, cap, k, limited)
            bt *= num_b / (den_b + eps)
            scale = bt.sum(axis=1, keepdims=True) + eps
            bt /= scale
            gts = [g * scale.T for g in gts]
            if record is not None:
                record.append(sum(kl_divergence(s.vt, model(s, g)) for s, g in zip(segs, gts)))
        return _unflat(wt, k), np.ascontiguousarray(bt.T)

    def _limit(self, wt: np.ndarray, initial: np.ndarray, k: int, limited: Sequence[int]) -> None:
        """Clip the flat templates ``wt [K*T, F]`` in place, for the classes ``limited`` and the bins
        above :attr:`AdaptiveConfig.max_gain_above_hz`, to ``max_gain`` x the flat initial templates
        ``initial`` at each class's fitted level (the least-squares gain of its template onto its
        initial one, which the strong bins of the one-shot set, not the floor)."""
        cfg = self.config
        t = wt.shape[0] // k
        lo = int(np.ceil(cfg.max_gain_above_hz * self.stft.n_fft / self.sample_rate))
        for i in limited:
            w, w0 = wt[i * t:(i + 1) * t], initial[i * t:(i + 1) * t]
            level = float(np.vdot(w, w0)) / max(float(np.vdot(w0, w0)), float(self.eps))
            np.minimum(w[:, lo:], w0[:, lo:] * np.float32(level * cfg.max_gain), out=w[:, lo:])

    def _limited(self, k: int) -> list[int]:
        """The class indices :attr:`AdaptiveConfig.max_gain` applies to."""
        groups = self.config.max_gain_groups
        if not groups:
            return list(range(k))
        if self.classes is None or len(self.classes) != k:
            raise IdmError("max_gain_groups needs the masker's class names (one per template)")
        return [i for i, c in enumerate(self.classes) if group_of(c) in groups]

    def fit(self, x: np.ndarray, hits: HitArrays, one_shots: np.ndarray, *,
            record_divergence: bool = False) -> AdaptivePlan:
        """Fit the templates to the mixture ``x [C, T]`` given the hits and the model's one-shots."""
        with _one_torch_thread():
            return self._fit(np.asarray(x, dtype=np.float32), hits, one_shots, record_divergence)

    def _fit(self, x: np.ndarray, hits: HitArrays, one_shots: np.ndarray, record_divergence: bool
             ) -> AdaptivePlan:
        cfg = self.config
        acts = hit_activations(hits, self.hop, cfg.pre_frames)
        init = self.initial_templates(one_shots)
        segs = self._segments(x, acts, self.fit_excerpts(x.shape[-1]))
        mid_segs = [chans[0] for chans in segs]
        b0 = self._init_bases(np.concatenate([s.vt for s in mid_segs], axis=0).T)
        record: list[float] | None = [] if record_divergence else None
        w_mid, b_mid = self._iterate(mid_segs, init.copy(), b0, cfg.n_iter, record, init)
        if x.shape[0] == 1:
            return AdaptivePlan(w_mid[None], b_mid[None], init, w_mid, record or [])
        ws, bs = [], []
        for c in range(x.shape[0]):
            w_c, b_c = self._iterate([chans[1 + c] for chans in segs], w_mid.copy(), b_mid.copy(), cfg.channel_iter,
                                     initial=init)
            ws.append(w_c)
            bs.append(b_c)
        return AdaptivePlan(np.stack(ws), np.stack(bs), init, w_mid, record or [])

    # -------------------------------------------------------------- masking
    def apply(self, plan: AdaptivePlan, mix: torch.Tensor, seg_a: int, hits: HitArrays,
              active: list[int], exponent: float | None = None) -> torch.Tensor:
        """Masked stems ``[K, C, T]`` of the segment ``mix [C, T]`` that starts at sample ``seg_a``
        (a multiple of the hop). Classes outside ``active`` (no hit sounds there) are zero."""
        cfg = self.config
        n = mix.shape[-1]
        k_all = plan.templates.shape[1]
        out = torch.zeros((k_all, mix.shape[0], n), dtype=mix.dtype, device=mix.device)
        if not active:
            return out
        if seg_a % self.hop:
            raise IdmError("adaptive masking needs segments that start on the frame grid")
        acts = hit_activations([hits[i] for i in active], self.hop, cfg.pre_frames)
        spec = self.stft.stft(mix)  # [C, F, N]
        mag = spec.abs().cpu().numpy()
        n_frames = mag.shape[-1]
        mt_all = hit_operator(acts, self.n_templ, seg_a // self.hop, n_frames).T.tocsc()
        t = self.n_templ
        eps = self.eps
        p = np.float32(cfg.exponent if exponent is None else exponent)
        shrink = np.float32(1.0 / (1.0 + cfg.residual_penalty))
        masks = np.zeros((len(active), mag.shape[0], n_frames, mag.shape[1]), dtype=np.float32)  # frame-major
        for c in range(mag.shape[0]):
            vt = np.ascontiguousarray(mag[c].T)  # [N, F]
            w = plan.templates[c]
            per_class = [np.asarray(mt_all[:, i * t:(i + 1) * t] @ np.ascontiguousarray(w[k].T), dtype=np.float32)
                         for i, k in enumerate(active)]  # [N, F] each
            classes = np.sum(per_class, axis=0) if len(per_class) > 1 else per_class[0].copy()
            bt = np.ascontiguousarray(plan.bases[c].T)  # [R, F]
            gt = self._residual_init(vt, bt.shape[0])
            for _ in range(cfg.residual_iter):
                ratio = _mm_nr_rf(gt, bt)
                ratio += classes
                ratio += eps
                np.divide(vt, ratio, out=ratio)
                gt *= np.einsum("nf,rf->nr", ratio, bt) * shrink
            total = _mm_nr_rf(gt, bt) ** p
            powered = [pc ** p for pc in per_class]
            for pc in powered:
                total += pc
            total += np.float32(1e-30)
            for i, pc in enumerate(powered):
                np.divide(pc, total, out=masks[i, c])
        mt = torch.from_numpy(masks).to(spec.device)
        a, c = mt.shape[0], spec.shape[0]
        spec_t = spec.transpose(1, 2).contiguous()  # [C, N, F]
        res = self.stft.istft_chunks(
            lambda f0, f1: (mt[:, :, f0:f1] * spec_t[None, :, f0:f1]).reshape(a * c, f1 - f0, -1), a * c, n_frames, n)
        out[active] = res.reshape(a, c, n).to(out.dtype)
        return out

    # -------------------------------------------------------------- the kit that sounds like the record
    def corrected_one_shots(self, plan: AdaptivePlan, one_shots: np.ndarray, hits: HitArrays) -> np.ndarray:
        """One-shots ``[K, L]`` with a time-varying spectral correction: each STFT frame of the
        synthetic one-shot scaled per bin by fitted / initial template (the last frames' mean
        correction past the template's end), clipped to ``max_correction``. Classes without hits
        keep their synthetic one-shot."""
        cfg = self.config
        p = cfg.pre_frames
        gain = plan.mid_templates[:, :, p:] / plan.initial[:, :, p:]
        gain = np.clip(gain, 0.0, cfg.max_correction).astype(np.float32)
        length = one_shots.shape[1]
        with torch.inference_mode():
            spec = self.stft.stft(torch.from_numpy(np.ascontiguousarray(one_shots, dtype=np.float32)))
            n_frames = spec.shape[-1]
            g = np.ones((one_shots.shape[0], spec.shape[1], n_frames), dtype=np.float32)
            use = min(n_frames, gain.shape[2])
            g[:, :, :use] = gain[:, :, :use]
            if n_frames > use:
                g[:, :, use:] = gain[:, :, max(0, use - 8):use].mean(axis=2, keepdims=True)
            out = np.array(self.stft.istft(spec * torch.from_numpy(g), length).numpy(), dtype=np.float32)
        for k, (pos, _amp) in enumerate(hits):
            if len(pos) == 0:  # nothing was fitted: the synthetic one-shot as it is
                out[k] = one_shots[k]
        return np.ascontiguousarray(out)
