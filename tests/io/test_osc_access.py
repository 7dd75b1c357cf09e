"""What the OSC bridge lets a client do (issue 10 item 4, issue 11 items 3-4): binding beyond
loopback needs allow_remote; remote clients read only allowed folders and write only inside the
output folder; a path a client may not read gets one reply whatever the reason, never a file's
contents; jobs belong to the client that started them; the optional token; /idm/open's length
limit; a job's memory is let go when it ends.

Remote rules are exercised from loopback with ``confine_local`` (the same code path a remote
address takes), and once for real from this machine's own non-loopback address when it has one."""
from __future__ import annotations

import gc
import json
import socket
import struct
import threading
import weakref

import numpy as np
import pytest
from osckit import SR, TcpPeer, UdpPeer, assert_alive, click_analyze, click_audio, stream_audio

from idm_host.audio import save_audio
from idm_host.errors import OscError
from idm_host.midi import read_midi
from idm_host.osc import OscServer
from idm_host.osc.access import is_loopback


def last_error(peer, id_, count=1) -> str:
    return peer.wait_for("/idm/error", count=count, where=lambda m: m.params[0] == id_)[-1].params[1]


@pytest.fixture
def tree(tmp_path):
    """allowed/ (readable by remote clients), private/ (not), out/ (the server's output folder)."""
    allowed, private, out = tmp_path / "allowed", tmp_path / "private", tmp_path / "out"
    for d in (allowed, private, out):
        d.mkdir()
    loop = click_audio([0.1, 0.3], length_s=0.5)
    save_audio(allowed / "loop.wav", loop, SR)
    save_audio(private / "secret.wav", loop, SR)
    (allowed / "link.wav").symlink_to(private / "secret.wav")
    (private / "keys.json").write_text(json.dumps({"api_key": "hunter2", "schema_version": 1}))
    (allowed / "keys.json").write_text(json.dumps({"password": "hunter3"}))
    return tmp_path


@pytest.fixture
def confined(tree):
    srv = OscServer(analyze=click_analyze, port=0, tcp_port=0, out_dir=tree / "out", allow_read=[tree / "allowed"],
                    confine_local=True).start()
    yield srv
    srv.stop()


# ------------------------------------------------------------------------------ binding
def test_binding_beyond_loopback_needs_allow_remote(tmp_path):
    for host in ("0.0.0.0", "::"):
        with pytest.raises(OscError, match="--allow-remote"):
            OscServer(analyze=click_analyze, host=host, port=0, out_dir=tmp_path)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        OscServer(analyze=click_analyze, host=host, port=0, out_dir=tmp_path)  # fine without it
    OscServer(analyze=click_analyze, host="0.0.0.0", port=0, out_dir=tmp_path, allow_remote=True)
    assert is_loopback("::ffff:127.0.0.1") and not is_loopback("192.168.1.2") and not is_loopback("0.0.0.0")
    with pytest.raises(OscError, match="not a folder"):
        OscServer(analyze=click_analyze, port=0, out_dir=tmp_path, allow_read=[tmp_path / "nope"])


# ------------------------------------------------------------------------------ reading
def test_confined_reads_get_one_answer_for_every_refusal(confined, tree):
    udp = UdpPeer(confined.udp_address)
    try:
        cases = {1: tree / "private" / "secret.wav",   # exists, outside the allowed folder
                 2: tree / "allowed" / "missing.wav",  # allowed folder, missing
                 3: tree / "allowed" / "link.wav",     # a link out of the allowed folder
                 4: tree / "allowed",                  # a folder
                 5: tree / "allowed" / ".." / "private" / "secret.wav"}
        texts = {}
        for id_, path in cases.items():
            udp.send("/idm/open", id_, str(path))
            texts[id_] = last_error(udp, id_).replace(str(path), "PATH")
        assert len(set(texts.values())) == 1, texts  # nothing tells a missing file from a forbidden one
        assert "not found, or not a file this client may read" in texts[1]
        udp.send("/idm/open", 6, str(tree / "allowed" / "loop.wav"))
        udp.wait_for("/idm/done", where=lambda m: m.params == [6])
        assert [m.params[1] for m in udp.of("/idm/hit")] == ["KD", "KD"]
        stream_audio(udp, 7, click_audio([0.05], length_s=0.1))  # streaming always works
        udp.wait_for("/idm/done", where=lambda m: m.params == [7])
    finally:
        udp.close()


def test_preset_paths_never_echo_a_file(confined, tree):
    udp = UdpPeer(confined.udp_address)
    try:
        stream_audio(udp, 1, click_audio([0.05], length_s=0.1))
        udp.wait_for("/idm/done", where=lambda m: m.params == [1])
        out = tree / "out" / "a.mid"
        replies = []
        for k, dm in enumerate([tree / "private" / "keys.json", tree / "allowed" / "keys.json",
                                tree / "allowed" / "nope.json"]):
            udp.send("/idm/export/midi", 1, str(out), str(dm))
            replies.append(udp.wait_for("/idm/error", count=k + 1)[k].params[1].replace(str(dm), "PATH"))
        assert len(set(replies)) == 1, replies
        assert not any(w in replies[0] for w in ("hunter", "api_key", "password")), replies
        udp.send("/idm/render", 1, str(tree / "private" / "keys.json"), "", str(tree / "out" / "r"))
        err = udp.wait_for("/idm/error", count=4)[3].params[1]
        assert "hunter" not in err and "api_key" not in err and "not found, or not a file" in err
        udp.send("/idm/render", 1, str(tree / "private"), "", str(tree / "out" / "r"))  # a folder, not a kit
        err = udp.wait_for("/idm/error", count=5)[4].params[1]
        assert err.replace(str(tree / "private"), "PATH") == replies[0]
        assert not out.exists()
    finally:
        udp.close()


def test_local_clients_get_no_file_contents_either(tmp_path):
    (tmp_path / "keys.json").write_text(json.dumps({"api_key": "hunter2"}))
    with OscServer(analyze=click_analyze, port=0, out_dir=tmp_path / "out") as srv:
        udp = UdpPeer(srv.udp_address)
        try:
            stream_audio(udp, 1, click_audio([0.05], length_s=0.1))
            udp.wait_for("/idm/done")
            udp.send("/idm/midi/notes", 1, str(tmp_path / "keys.json"))
            err = udp.wait_for("/idm/error")[0].params[1]
            assert "api_key" not in err and "hunter2" not in err
        finally:
            udp.close()


# ------------------------------------------------------------------------------ writing
def test_confined_writes_stay_inside_out(confined, tree):
    udp = UdpPeer(confined.udp_address)
    try:
        stream_audio(udp, 1, click_audio([0.05, 0.2], length_s=0.3))
        udp.wait_for("/idm/done", where=lambda m: m.params == [1])
        victim = tree / "private" / "victim.mid"
        victim.write_bytes(b"precious")
        for k, target in enumerate([victim, tree / "out" / ".." / "private" / "victim.mid", tree / "elsewhere.mid"]):
            udp.send("/idm/export/midi", 1, str(target), "gm", 1)
            assert "may write only inside" in udp.wait_for("/idm/error", count=k + 1)[k].params[1]
        (tree / "out" / "escape").symlink_to(tree / "private")
        udp.send("/idm/export/midi", 1, str(tree / "out" / "escape" / "victim.mid"), "gm", 1)
        assert "may write only inside" in udp.wait_for("/idm/error", count=4)[3].params[1]
        udp.send("/idm/render", 1, "", "", str(tree / "private" / "render"))
        assert "may write only inside" in udp.wait_for("/idm/error", count=5)[4].params[1]
        assert victim.read_bytes() == b"precious" and not (tree / "private" / "render").exists()
        inside = tree / "out" / "mine.mid"
        udp.send("/idm/export/midi", 1, str(inside), "gm")
        udp.wait_for("/idm/midi", where=lambda m: m.params[1] == str(inside))
        assert [h.time_s for h in read_midi(inside).hits["KD"]] == pytest.approx([0.05, 0.2], abs=2e-3)
    finally:
        udp.close()


# ------------------------------------------------------------------------------ ownership
def test_jobs_belong_to_the_client_that_started_them(tmp_path):
    release = threading.Event()

    def slow(audio, progress):
        if audio.n_frames == SR // 10:
            release.wait(20)
        return click_analyze(audio, progress)

    with OscServer(analyze=slow, port=0, tcp_port=0, out_dir=tmp_path / "out") as srv:
        owner, other, tcp = UdpPeer(srv.udp_address), UdpPeer(srv.udp_address), TcpPeer(srv.tcp_address)
        try:
            stream_audio(owner, 1, click_audio([0.05], length_s=0.2))
            owner.wait_for("/idm/done", where=lambda m: m.params == [1])
            for peer in (other, tcp):
                peer.send("/idm/export/midi", 1, str(tmp_path / "stolen.mid"), "gm")
                peer.send("/idm/midi/notes", 1, "gm")
                peer.send("/idm/render", 1, "", "", str(tmp_path / "stolen"))
                errs = [m.params[1] for m in peer.wait_for("/idm/error", count=3)]
                assert all("no finished analysis with this id" in e for e in errs), errs
                assert not peer.of("/idm/midi/note")
            assert not (tmp_path / "stolen.mid").exists() and not (tmp_path / "stolen").exists()
            # a running job and an open stream: others cannot cancel or feed them
            stream_audio(owner, 2, click_audio([0.05], length_s=0.1))  # held by `slow`
            owner.wait_for("/idm/progress", where=lambda m: m.params[0] == 2)
            owner.send("/idm/audio/begin", 3, SR, 1, 100)
            other.send("/idm/cancel", 2)
            other.send("/idm/cancel", 3)
            other.send("/idm/audio/chunk", 3, 0, np.zeros(100, "<f4").tobytes())
            other.send("/idm/audio/end", 3)
            errs = [m.params[1] for m in other.wait_for("/idm/error", count=7)[3:]]
            assert "nothing to cancel" in errs[0] and "nothing to cancel" in errs[1], errs
            assert all("no such open stream" in e for e in errs[2:]), errs
            release.set()
            owner.wait_for("/idm/done", where=lambda m: m.params == [2])
            owner.send("/idm/audio/chunk", 3, 0, np.zeros(100, "<f4").tobytes())
            owner.send("/idm/audio/end", 3)
            owner.wait_for("/idm/done", where=lambda m: m.params == [3])  # the owner's stream was intact
            out = tmp_path / "mine.mid"
            owner.send("/idm/export/midi", 1, str(out), "gm")
            owner.wait_for("/idm/midi", where=lambda m: m.params[1] == str(out))
        finally:
            release.set()
            for p in (owner, other, tcp):
                p.close()


# ------------------------------------------------------------------------------ the token
def test_token(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token-123\n")
    with OscServer(analyze=click_analyze, port=0, tcp_port=0, out_dir=tmp_path / "out", token_file=token_file) as srv:
        udp, tcp = UdpPeer(srv.udp_address), TcpPeer(srv.tcp_address)
        try:
            assert_alive(udp)  # ping needs no token
            udp.send("/idm/audio/begin", 1, SR, 1, 100)
            assert "needs its token first" in last_error(udp, 1)
            udp.send("/idm/auth", "wrong-token-000")
            assert "wrong token" in last_error(udp, 0)
            udp.send("/idm/auth", "s3cret-token-123")
            udp.wait_for("/idm/auth/ok")
            stream_audio(udp, 2, click_audio([0.05], length_s=0.1))
            udp.wait_for("/idm/done", where=lambda m: m.params == [2])
            # TCP: per connection; the token and a request in one bundle also works
            tcp.send("/idm/audio/begin", 3, SR, 1, 100)
            assert "needs its token first" in last_error(tcp, 3)
            auth = b"/idm/auth\x00\x00\x00,s\x00\x00s3cret-token-123\x00\x00\x00\x00"
            begin = b"/idm/audio/begin\x00\x00\x00\x00,iiii\x00\x00\x00" + struct.pack(">iiii", 4, SR, 1, 100)
            tcp.send_raw_frame(b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", len(auth)) + auth
                               + struct.pack(">i", len(begin)) + begin)
            tcp.wait_for("/idm/auth/ok")
            tcp.send("/idm/audio/chunk", 4, 0, np.zeros(100, "<f4").tobytes())
            tcp.send("/idm/audio/end", 4)
            tcp.wait_for("/idm/done", where=lambda m: m.params == [4])
            # guessing is limited per host
            for _ in range(12):
                udp.send("/idm/auth", "guess-guess-guess")
            assert "too many wrong tokens" in udp.wait_for("/idm/error", count=13)[-1].params[1]
        finally:
            udp.close()
            tcp.close()
    with pytest.raises(OscError, match="at least 8"):
        OscServer(analyze=click_analyze, port=0, token="short")


# ------------------------------------------------------------------------------ /idm/open limits, memory
def test_open_obeys_the_stream_length_limit(tmp_path):
    save_audio(tmp_path / "long.wav", np.zeros((1, 3 * SR), np.float32), SR)
    with OscServer(analyze=click_analyze, port=0, out_dir=tmp_path / "out", max_stream_s=2) as srv:
        udp = UdpPeer(srv.udp_address)
        try:
            udp.send("/idm/open", 1, str(tmp_path / "long.wav"))
            assert "3.0 s is longer than this server's limit of 2 s" in last_error(udp, 1)
            assert srv.stats["jobs_done"] == 0 and not srv._jobs
        finally:
            udp.close()


def test_a_jobs_audio_is_let_go_when_it_ends(tmp_path):
    refs = []

    def keep_ref(audio, progress):
        refs.append(weakref.ref(audio.samples))
        return click_analyze(audio, progress)

    save_audio(tmp_path / "a.wav", click_audio([0.1], length_s=2.0), SR)
    with OscServer(analyze=keep_ref, port=0, out_dir=tmp_path / "out") as srv:
        udp = UdpPeer(srv.udp_address)
        try:
            udp.send("/idm/open", 1, str(tmp_path / "a.wav"))
            stream_audio(udp, 2, click_audio([0.1], length_s=2.0))
            udp.wait_for("/idm/done", count=2)
            for _ in range(100):  # the worker lets go right after its last reply
                gc.collect()
                if srv.stats["jobs_done"] == 2 and all(r() is None for r in refs):
                    break
                threading.Event().wait(0.02)
            assert len(refs) == 2 and all(r() is None for r in refs)
        finally:
            udp.close()


# ------------------------------------------------------------------------------ a real remote address
def _own_address() -> str | None:
    """An IPv4 address of one of this machine's own interfaces that is not loopback (Linux ioctl);
    packets to it never leave the machine."""
    import fcntl

    for _index, name in socket.if_nameindex():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            req = struct.pack("256s", name.encode()[:15])
            host = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])  # SIOCGIFADDR
        except OSError:
            continue
        finally:
            s.close()
        if not is_loopback(host):
            return host
    return None


def test_a_client_at_a_non_loopback_address_is_remote(tree):
    host = _own_address()
    if host is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with pytest.raises(OscError, match="--allow-remote"):
        OscServer(analyze=click_analyze, host=host, port=0, out_dir=tree / "out")
    with OscServer(analyze=click_analyze, host=host, port=0, out_dir=tree / "out", allow_remote=True,
                   allow_read=[tree / "allowed"]) as srv:
        peer = UdpPeer(srv.udp_address, bind_host=host)  # its packets come from a non-loopback address
        try:
            peer.send("/idm/open", 1, str(tree / "private" / "secret.wav"))
            assert "not found, or not a file this client may read" in last_error(peer, 1)
            peer.send("/idm/open", 2, str(tree / "allowed" / "loop.wav"))
            peer.wait_for("/idm/done", where=lambda m: m.params == [2])
            peer.send("/idm/export/midi", 2, str(tree / "private" / "x.mid"), "gm")
            assert "may write only inside" in last_error(peer, 2)
        finally:
            peer.close()
