"""End to end with the real engine: audio streamed over TCP to an OscServer holding a Separator on
the official weights gives exactly the engine's own transcription, plus readable stems and MIDI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osckit import TcpPeer, UdpPeer, stream_audio

from idm_host.audio import load_audio
from idm_host.midi import read_midi
from idm_host.osc import OscServer


@pytest.mark.slow
def test_stream_to_real_separator(separator, demo_loop, tmp_path):
    audio = load_audio(demo_loop)
    expected = separator.transcribe(audio)
    assert expected.n_hits > 10
    with OscServer(separator, port=0, tcp_port=0, out_dir=tmp_path / "out") as srv:
        peer = TcpPeer(srv.tcp_address)
        try:
            stream_audio(peer, 3, audio.samples, rate=audio.sample_rate, chunk_frames=audio.sample_rate)
            peer.wait_for("/idm/done", timeout_s=120)
            hits = [m.params for m in peer.of("/idm/hit")]
            got = sorted((c, round(t, 6), round(v, 5)) for _, c, t, v in hits)
            want = sorted((c, round(h.time_s, 6), round(h.velocity, 5)) for c in expected.classes
                          for h in expected.hits[c])
            assert len(got) == len(want)
            for (gc, gt, gv), (wc, wt, wv) in zip(got, want):
                assert gc == wc and gt == pytest.approx(wt, abs=1e-6) and gv == pytest.approx(wv, abs=1e-6)
            stems_dir = Path(peer.of("/idm/stems")[0].params[1])
            stems = [load_audio(stems_dir / f"{c}.wav", sample_rate=None) for c in separator.classes]
            residual = load_audio(stems_dir / "residual.wav", sample_rate=None)
            total = sum(s.samples for s in stems) + residual.samples
            assert total.shape == audio.samples.shape
            assert np.abs(total - audio.samples).max() < 1e-3  # stems + residual null the input (24-bit files)
            tr = read_midi(peer.of("/idm/midi")[0].params[1])
            assert tr.n_hits == expected.n_hits
        finally:
            peer.close()


@pytest.mark.slow
def test_open_with_lazy_factory(separator, demo_loop, tmp_path):
    made = []

    def factory():
        made.append(1)
        return separator

    with OscServer(factory, port=0, out_dir=tmp_path) as srv:
        assert made == []  # the model is only loaded when the first job arrives
        peer = UdpPeer(srv.udp_address)
        try:
            peer.send("/idm/open", 1, str(demo_loop))
            peer.wait_for("/idm/done", timeout_s=120)
            assert made == [1]
            assert len(peer.of("/idm/hit")) == separator.transcribe(demo_loop).n_hits
        finally:
            peer.close()
