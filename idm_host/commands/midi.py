"""``idm-host midi``: send hits to a MIDI port, list ports and drum maps."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_command, add_output_flags, print_json, print_summary, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("midi", help="send MIDI to a port; list ports and drum maps")
    msub = p.add_subparsers(dest="midi_command", metavar="ACTION", required=True)

    send = add_command(
        msub, "send", run_send, help="send a .mid file or onsets JSON to a MIDI output port",
        description="Send drum notes to a MIDI output port (python-rtmidi). Without --port a virtual "
        "port named idm-host is opened for a DAW to connect to. Where no MIDI system exists, use "
        "`idm-host serve` and the /idm/midi/notes OSC request instead.")
    send.add_argument("file", metavar="FILE", help=".mid file (sent as is) or onsets JSON (mapped by --drum-map)")
    send.add_argument("--port", metavar="NAME", help="output port name or a unique part of it (default: virtual idm-host)")
    send.add_argument("--realtime", action="store_true", help="play in time instead of all at once")
    send.add_argument("--drum-map", default="gm", metavar="NAME", help="map for onsets JSON (default: %(default)s)")
    send.add_argument("--backend", metavar="NAME",
                      help="mido backend, e.g. mido.backends.rtmidi/UNIX_JACK (default: $IDM_HOST_MIDI_BACKEND)")
    send.add_argument("--wait-s", type=float, default=0.0, metavar="S",
                      help="with a virtual port, wait this long for the DAW to connect before sending")
    add_output_flags(send)

    ports = add_command(msub, "ports", run_ports, help="list MIDI output ports")
    ports.add_argument("--backend", metavar="NAME", help="mido backend name")
    add_output_flags(ports)

    maps = add_command(msub, "maps", run_maps, help="list drum maps with their notes (36 = C1; FL Studio: C3)")
    maps.add_argument("name", nargs="?", help="show one map in detail")
    add_output_flags(maps)


def run_send(args: argparse.Namespace) -> int:
    import time

    from ..errors import IdmError
    from ..midi import open_midi_output, send_midi
    from ..types import Transcription

    path = Path(args.file)
    if not path.is_file():
        raise IdmError(f"{path}: file not found; check the path")
    source: Path | Transcription
    if path.suffix.lower() in (".mid", ".midi", ".smf"):
        source = path
    else:
        try:
            source = Transcription.from_json(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise IdmError(f"{path}: cannot read ({exc}); give a .mid file or onsets JSON") from exc
    port = open_midi_output(args.port, backend=args.backend)
    try:
        if args.port is None and args.wait_s > 0:
            time.sleep(args.wait_s)
        with progress_bar(args, "sending") as cb:
            n = send_midi(source, port, realtime=args.realtime, drum_map=args.drum_map, progress=cb)
    finally:
        port.close()
    print_summary(args, {"file": str(path), "port": port.name, "messages": n, "realtime": args.realtime},
                  f"sent {n} MIDI messages to {port.name}")
    return 0


def run_ports(args: argparse.Namespace) -> int:
    from ..midi import list_midi_outputs

    names = list_midi_outputs(backend=args.backend)
    if args.json:
        print_json({"outputs": names})
    else:
        for n in names:
            print(n)
    return 0


def run_maps(args: argparse.Namespace) -> int:
    from ..classes import IDM_CLASSES, class_info
    from ..drum_maps import list_drum_maps, load_drum_map

    maps = [load_drum_map(args.name)] if args.name else list_drum_maps()
    if args.json:
        print_json([{"name": m.name, "title": m.title, "source": m.source, "verified": m.verified,
                     "path": str(m.path) if m.path else None,
                     "notes": [m.describe(c) for c in IDM_CLASSES]} for m in maps])
        return 0
    for m in maps:
        if not args.name:
            notes = "  ".join(f"{c}={m.note_for(c)}" for c in IDM_CLASSES)
            print(f"{m.name:22s} {m.title}\n{'':22s} {notes}")
            continue
        print(f"{m.name}: {m.title}\nsource: {m.source}\nverified: {m.verified}\n")
        print(f"{'class':8s} {'drum':14s} {'note':>4s} {'DAW':>5s} {'FL':>5s}  name in the instrument")
        for c in IDM_CLASSES:
            d = m.describe(c)
            print(f"{c:8s} {class_info(c).name:14s} {d['note']:4d} {d['daw']:>5s} {d['fl_studio']:>5s}  {d['name']}")
    return 0
