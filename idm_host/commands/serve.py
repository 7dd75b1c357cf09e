"""``idm-host serve``: the OSC bridge for DAWs, plug-ins and scripts."""
from __future__ import annotations

import argparse
import sys

from ._common import add_command, add_model_flags, add_output_flags, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "serve", run,
        help="run the OSC server (UDP and TCP) that analyses audio for DAWs and plug-ins",
        description="Listen for OSC requests (/idm/open, /idm/audio/begin|chunk|end, /idm/export/midi, "
        "/idm/ping, ...) and reply with /idm/progress, /idm/hit, /idm/stems, /idm/midi and /idm/done. "
        "See examples/README.md for the address space and DAW scripts. Stop with Ctrl-C.",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default: %(default)s, this machine only); anything else needs "
                        "--allow-remote")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow binding an address other machines can reach; their clients may stream audio, read "
                        "only inside --allow-read folders and write only inside --out")
    p.add_argument("--allow-read", action="append", default=[], metavar="DIR",
                   help="a folder clients on other machines may open files from (repeatable; default: none)")
    p.add_argument("--confine-local", action="store_true",
                   help="give clients on this machine the remote rules too (a machine shared with other users)")
    p.add_argument("--token", default=None, metavar="TEXT",
                   help="a shared secret every client must send first as /idm/auth s:token (visible to other users "
                        "in the process list: prefer --token-file)")
    p.add_argument("--token-file", default=None, metavar="FILE",
                   help="read the shared token from this file's first line")
    p.add_argument("--port", type=int, default=9000, help="UDP port (default: %(default)s; 0 = any free port)")
    p.add_argument("--tcp-port", type=int, default=None, metavar="PORT",
                   help="also listen on TCP (OSC 1.0 length-prefixed framing) for large audio transfers")
    p.add_argument("--reply-port", type=int, default=None, metavar="PORT",
                   help="send every reply to this UDP port instead of back to the sender")
    p.add_argument("--reply-host", default=None, metavar="HOST", help="host of --reply-port (default: the sender's)")
    p.add_argument("--out", default=None, metavar="DIR", help="folder for stems and MIDI (default: a temp folder)")
    add_model_flags(p)
    p.add_argument("--drum-map", default="gm", help="drum map of the MIDI file written per job")
    p.add_argument("--max-stream-s", type=float, default=900.0,
                   help="longest audio per stream or /idm/open file (s; default: %(default)s)")
    p.add_argument("--max-streams", type=int, default=4, help="streams open at once")
    p.add_argument("--max-connections", type=int, default=32, help="TCP connections at once (default: %(default)s)")
    p.add_argument("--max-connections-per-host", type=int, default=16,
                   help="TCP connections at once from one host (default: %(default)s)")
    p.add_argument("--max-total-mb", type=float, default=1024.0, help="memory for all open streams (MiB)")
    p.add_argument("--no-stems", action="store_true", help="skip writing stem WAVs (hits and MIDI only)")
    add_output_flags(p)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from ..drum_maps import load_drum_map
    from ..models import model_path
    from ..osc import OscServer

    model, device = args.model, args.device

    def make_separator():
        from ..engine import Separator

        return Separator(model, device)

    server = OscServer(
        make_separator, host=args.host, port=args.port, tcp_port=args.tcp_port, reply_port=args.reply_port,
        reply_host=args.reply_host, out_dir=args.out, max_stream_s=args.max_stream_s,
        max_streams=args.max_streams, max_total_mb=args.max_total_mb, write_stems=not args.no_stems,
        drum_map=args.drum_map, allow_remote=args.allow_remote, allow_read=args.allow_read, token=args.token,
        token_file=args.token_file, confine_local=args.confine_local, max_connections=args.max_connections,
        max_connections_per_host=args.max_connections_per_host,
    )  # validates the arguments (a host beyond loopback without --allow-remote is refused here)
    model_path(args.model)  # fail now, not at the first request, when the model is not installed
    load_drum_map(args.drum_map)
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:  # only sets a flag: the main thread stops the server
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    server.start()
    info = {"udp": list(server.udp_address or ()), "tcp": list(server.tcp_address) if server.tcp_address else None,
            "reply_port": args.reply_port, "out": str(server.out_dir)}
    if args.json:
        print_json(info)
    elif not args.quiet:
        tcp = f", tcp {info['tcp'][0]}:{info['tcp'][1]}" if info["tcp"] else ""
        print(f"idm-host OSC server on udp {info['udp'][0]}:{info['udp'][1]}{tcp}; Ctrl-C stops", file=sys.stderr)
    sys.stdout.flush()
    try:
        # SIGTERM and SIGINT stop the server within a second whatever it is doing: the transports
        # notice in 0.1 s; a running job gets half a second to see its cancellation
        while not stop.wait(0.5) and server.running:
            pass
    finally:
        server.stop(timeout_s=0.5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # leave at once, streams flushed and exit handlers run, without the interpreter's teardown: that
    # takes about a second here (native libraries' destructors, freeing every module), and a job
    # still inside native code (torch, a decoder) would be torn down mid-call ("terminate called
    # without an active exception"); stop() has already removed any partial output
    import atexit
    import logging
    import os

    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
