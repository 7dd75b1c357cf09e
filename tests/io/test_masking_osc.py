"""/idm/open's optional masking argument, over real UDP with the real engine: the written stems are
the engine's own in that mode, kit/ holds the corrected one-shots, and a bad mode is one clear error."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osckit import UdpPeer

from idm_host.audio import load_audio
from idm_host.osc import OscServer


@pytest.mark.slow
def test_open_with_masking(separator, demo_loop, tmp_path):
    audio = load_audio(demo_loop)
    a, _enc, tr, kit = separator.prepare(audio)
    plan = separator.fit_adaptive(a, tr, kit)
    want = np.concatenate([s for _, s, _ in separator.iter_blocks(a, tr, kit, masking="adaptive", plan=plan)], axis=2)
    adapted = separator.adapted_kit(plan, tr, kit)
    with OscServer(separator, port=0, out_dir=tmp_path / "out") as srv:
        peer = UdpPeer(srv.udp_address)
        try:
            peer.send("/idm/open", 7, str(demo_loop), "adaptive")
            peer.wait_for("/idm/done", timeout_s=300)
            out = Path(peer.of("/idm/stems")[0].params[1])
            for i, c in enumerate(separator.classes):
                got = load_audio(out / f"{c}.wav", sample_rate=None).samples
                np.testing.assert_allclose(got, want[i], atol=2e-4)  # 24-bit files
                shot = load_audio(out / "kit" / f"{c}.wav", sample_rate=None).samples[0]
                np.testing.assert_allclose(shot, adapted.one_shots[i], atol=2e-4)
            peer.send("/idm/open", 8, str(demo_loop), "ideal")
            err = peer.wait_for("/idm/error", where=lambda m: m.params[0] == 8)[0]
            assert "masking must be one of" in err.params[1] and "adaptive" in err.params[1]
        finally:
            peer.close()
