"""The OSC bridge over real loopback UDP and TCP with python-osc clients: ping, streamed audio, file
analysis, replies (hits, stems, MIDI), exports and cancellation."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from osckit import SR, UdpListener, UdpPeer, click_analyze, click_audio, stream_audio

from idm_host import __version__
from idm_host.audio import load_audio, save_audio
from idm_host.errors import OscError
from idm_host.midi import read_midi
from idm_host.osc import OscServer


def test_binds_loopback_by_default(server):
    assert server.udp_address[0] == "127.0.0.1" and server.tcp_address[0] == "127.0.0.1"
    assert server.udp_address[1] > 0 and server.tcp_address[1] > 0


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_ping(server, transport, request):
    peer = request.getfixturevalue(transport)
    peer.send("/idm/ping")
    assert peer.wait_for("/idm/pong")[0].params == [__version__]


def check_analysis(peer, id_: int, audio: np.ndarray, kd_times, sd_times=()):
    done = peer.wait_for("/idm/done", where=lambda m: m.params == [id_])
    assert done
    addresses = [m.address for m in peer.messages if m.params and m.params[0] == id_]
    # order: progress... hits... stems, midi, done
    assert addresses[0] == "/idm/progress" and addresses[-1] == "/idm/done"
    first_hit = addresses.index("/idm/hit")
    assert addresses.index("/idm/stems") > first_hit and addresses.index("/idm/midi") > first_hit
    fractions = [m.params[1] for m in peer.of("/idm/progress") if m.params[0] == id_]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    hits = [m.params for m in peer.of("/idm/hit") if m.params[0] == id_]
    assert [h[2] for h in hits] == sorted(h[2] for h in hits)
    kd = [h[2] for h in hits if h[1] == "KD"]
    sd = [h[2] for h in hits if h[1] == "SD"]
    assert kd == pytest.approx(list(kd_times), abs=1.5 / SR)
    assert sd == pytest.approx(list(sd_times), abs=1.5 / SR)
    assert all(0.0 < h[3] <= 1.0 for h in hits)
    # stems folder: KD stem equals the input (24-bit), residual silent, one file per class
    stems_dir = peer.of("/idm/stems")[-1].params[1]
    from pathlib import Path

    d = Path(stems_dir)
    assert (d / "KD.wav").exists() and (d / "residual.wav").exists() and (d / "kit" / "KD.wav").exists()
    kd_stem = load_audio(d / "KD.wav", sample_rate=None)
    assert kd_stem.samples.shape == audio.shape
    assert np.abs(kd_stem.samples - audio).max() < 1e-4
    # MIDI: read back, same hits within one tick
    midi_path = [m for m in peer.of("/idm/midi") if m.params[0] == id_][-1].params[1]
    tr = read_midi(midi_path)
    assert tr.times("KD") == pytest.approx(list(kd_times), abs=1.1 / 960)
    return d


@pytest.mark.parametrize("channels", [1, 2])
def test_stream_over_udp(server, udp, channels):
    audio = click_audio([0.1, 0.5, 0.75], length_s=1.0, channels=channels, negative=[0.25])
    n = stream_audio(udp, 7, audio, chunk_frames=4096 if channels == 2 else 16000, pace_s=0.0005)
    assert n > 1
    check_analysis(udp, 7, audio, [0.1, 0.5, 0.75], [0.25])


def test_stream_over_tcp_large_chunks(server, tcp):
    audio = click_audio([0.5 * k + 0.01 for k in range(20)], length_s=10.0, channels=2)
    stream_audio(tcp, 42, audio, chunk_frames=SR)  # 1 s (353 KB) per chunk
    check_analysis(tcp, 42, audio, [0.5 * k + 0.01 for k in range(20)])


def test_open_file(server, udp, tmp_path):
    audio = click_audio([0.2, 0.4], length_s=0.8)
    path = save_audio(tmp_path / "loop.wav", audio, SR, bit_depth=32)
    udp.send("/idm/open", 5, str(path))
    d = check_analysis(udp, 5, audio, [0.2, 0.4])
    assert d.name.startswith("loop-5")
    # without an id, the server assigns one and names it in every reply
    udp.send("/idm/open", str(path))
    done = udp.wait_for("/idm/done", count=2)
    assigned = done[-1].params[0]
    assert assigned not in (0, 5)
    assert [m.params[1] for m in udp.of("/idm/hit") if m.params[0] == assigned] == ["KD", "KD"]


def test_open_errors(server, udp, tmp_path):
    udp.send("/idm/open", 1, "relative/loop.wav")
    assert "absolute path" in udp.wait_for("/idm/error")[0].params[1]
    udp.send("/idm/open", 2, str(tmp_path / "missing.wav"))
    err = udp.wait_for("/idm/error", where=lambda m: m.params[0] == 2)[0]
    assert "not found" in err.params[1]
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    udp.send("/idm/open", 3, str(bad))
    err = udp.wait_for("/idm/error", where=lambda m: m.params[0] == 3)[0]
    assert "analysis failed" in err.params[1] and "noise.wav" in err.params[1]


def test_reply_port(tmp_path):
    listener = UdpListener()
    srv = OscServer(analyze=click_analyze, port=0, reply_port=listener.port, out_dir=tmp_path).start()
    try:
        sender = UdpPeer(srv.udp_address)
        sender.send("/idm/ping")
        assert listener.wait_for("/idm/pong")
        stream_audio(sender, 9, click_audio([0.3], length_s=0.5))
        listener.wait_for("/idm/done")
        assert [m.params[1:3] for m in listener.of("/idm/hit")] == [["KD", pytest.approx(0.3, abs=1e-4)]]
        assert sender.messages == []  # nothing went to the sender's own port
        sender.close()
    finally:
        srv.stop()
        listener.close()


def test_export_midi_and_notes(server, udp, tmp_path):
    stream_audio(udp, 11, click_audio([0.1, 0.6], length_s=1.0, negative=[0.35]))
    udp.wait_for("/idm/done")
    out = tmp_path / "mine.mid"
    udp.send("/idm/export/midi", 11, str(out), "superior-drummer-3")
    assert udp.wait_for("/idm/midi", where=lambda m: m.params[1] == str(out))
    tr = read_midi(out, drum_map="superior-drummer-3")
    assert tr.times("KD") == pytest.approx([0.1, 0.6], abs=1e-3) and tr.times("SD") == pytest.approx([0.35], abs=1e-3)
    # never overwritten without the flag
    before, inode = out.read_bytes(), out.stat().st_ino
    udp.send("/idm/export/midi", 11, str(out), "gm")
    assert "already exists" in udp.wait_for("/idm/error")[0].params[1]
    assert out.read_bytes() == before and out.stat().st_ino == inode
    udp.send("/idm/export/midi", 11, str(out), "gm", 1)
    udp.wait_for("/idm/midi", count=2, where=lambda m: m.params[1] == str(out))
    assert out.stat().st_ino != inode  # replaced (atomically, by rename)
    # notes as OSC (the no-MIDI-system alternative)
    udp.send("/idm/midi/notes", 11, "gm")
    end = udp.wait_for("/idm/midi/end")[0]
    notes = [m.params for m in udp.of("/idm/midi/note")]
    assert end.params == [11, 3]
    assert [n[0] for n in notes] == [36, 38, 36] and [n[2] for n in notes] == pytest.approx([0.1, 0.35, 0.6], abs=1e-4)
    # unknown id / unknown map
    udp.send("/idm/export/midi", 999, str(tmp_path / "x.mid"), "gm")
    udp.wait_for("/idm/error", where=lambda m: m.params[0] == 999 and "no finished analysis" in m.params[1])
    udp.send("/idm/export/midi", 11, str(tmp_path / "y.mid"), "no-such-map")
    udp.wait_for("/idm/error", where=lambda m: "unknown drum map" in m.params[1])
    assert not (tmp_path / "y.mid").exists()


def test_cancel_running_job_and_open_stream(tmp_path):
    started, release = threading.Event(), threading.Event()

    def slow(audio, progress):
        started.set()
        while not release.wait(0.01):
            progress(0.1, "waiting")
        return click_analyze(audio, progress)

    srv = OscServer(analyze=slow, port=0, out_dir=tmp_path).start()
    peer = UdpPeer(srv.udp_address)
    try:
        stream_audio(peer, 1, click_audio([0.1], length_s=0.2))
        assert started.wait(5)
        peer.send("/idm/cancel", 1)
        err = peer.wait_for("/idm/error", where=lambda m: m.params[0] == 1)[0]
        assert "cancelled" in err.params[1]
        assert not peer.of("/idm/done")
        assert list(tmp_path.iterdir()) == []  # nothing partial written
        peer.send("/idm/audio/begin", 2, SR, 1, SR)
        peer.send("/idm/cancel", 2)
        peer.wait_for("/idm/error", where=lambda m: m.params == [2, "stream 2: cancelled"])
        peer.send("/idm/cancel", 3)
        peer.wait_for("/idm/error", where=lambda m: m.params[0] == 3 and "nothing to cancel" in m.params[1])
    finally:
        release.set()
        peer.close()
        srv.stop()


def test_construction_errors():
    with pytest.raises(OscError, match="ports are"):
        OscServer(analyze=click_analyze, port=70000)
    with pytest.raises(OscError, match="either"):
        OscServer("default", analyze=click_analyze)
    busy = OscServer(analyze=click_analyze, port=0).start()
    try:
        with pytest.raises(OscError, match="cannot listen on UDP"):
            OscServer(analyze=click_analyze, port=busy.udp_address[1]).start()
    finally:
        busy.stop()


def test_render_with_kit_and_fx(server, udp, tmp_path):
    stream_audio(udp, 21, click_audio([0.1, 0.6], length_s=1.0, negative=[0.35]))
    udp.wait_for("/idm/done")
    out = tmp_path / "render"
    udp.send("/idm/render", 21, "synth-electro", "KD=tight-kick,master=master-glue", str(out))
    done = udp.wait_for("/idm/render/done", timeout_s=60)[0]
    assert done.params == [21, str(out)]
    kd = load_audio(out / "KD.wav", sample_rate=None).samples.mean(0)
    sd = load_audio(out / "SD.wav", sample_rate=None).samples.mean(0)
    mix = load_audio(out / "mix.wav", sample_rate=None).samples
    assert np.abs(kd[: int(0.09 * SR)]).max() < 1e-3 < np.abs(kd[int(0.1 * SR): int(0.2 * SR)]).max()
    assert np.abs(sd[: int(0.34 * SR)]).max() < 1e-3 < np.abs(sd[int(0.35 * SR): int(0.45 * SR)]).max()
    assert np.abs(mix).max() > 1e-3
    # bad presets are answered at once; an existing folder is never overwritten
    udp.send("/idm/render", 21, "no-such-kit", "", str(tmp_path / "r2"))
    udp.wait_for("/idm/error", where=lambda m: "no-such-kit" in m.params[1])
    udp.send("/idm/render", 21, "", "KD=no-such-fx", str(tmp_path / "r3"))
    udp.wait_for("/idm/error", where=lambda m: "no-such-fx" in m.params[1])
    udp.send("/idm/render", 21, "", "XX=tight-kick", str(tmp_path / "r4"))
    udp.wait_for("/idm/error", where=lambda m: "unknown class 'XX'" in m.params[1])
    before = (out / "KD.wav").stat().st_mtime_ns
    udp.send("/idm/render", 21, "", "", str(out))
    udp.wait_for("/idm/error", where=lambda m: m.params[0] == 21 and "already exists" in m.params[1])
    assert (out / "KD.wav").stat().st_mtime_ns == before
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()
