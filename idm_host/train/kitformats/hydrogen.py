"""Hydrogen drumkits: a folder with ``drumkit.xml`` (instruments, velocity layers, gains).

Imported through :mod:`idm_host.train.kits`, which holds the one loader (:func:`~idm_host.train.kits.load_kit`).
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path


from .base import (GM_KIT_NOTES, _SKIP_WORDS, Instrument, KitError, PathLike, _SampleCache, SampledKit, SampleLayer,
                   _add, _finish, note_for_name, repitch)

#: The loaders log under the name they had before the split, ``idm_host.train.kits``.
log = logging.getLogger("idm_host.train.kits")

def _strip_ns(root: ET.Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]


def _float(el: ET.Element | None, tag: str, default: float) -> float:
    child = el.find(tag) if el is not None else None
    if child is None or child.text is None or not child.text.strip():
        return default
    try:
        return float(child.text)
    except ValueError:
        return default


def load_hydrogen_kit(path: PathLike) -> SampledKit:
    """Load a Hydrogen drumkit: a folder with ``drumkit.xml`` (or the xml itself).

    Instruments are classified by name (:func:`note_for_name`), then by ``midiOutNote`` when the
    name says nothing; percussion that is not one of the model's classes is skipped. Both the old
    (``<layer>`` in ``<instrument>``) and the component (``<instrumentComponent>``) layouts are read.

    Raises:
        KitError: the folder or xml is missing or malformed, a sample is missing, or no drum is usable.
    """
    p = Path(path)
    xml = p / "drumkit.xml" if p.is_dir() else p
    if not xml.exists():
        raise KitError(f"{p}: no drumkit.xml found; point at a Hydrogen drumkit folder")
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as exc:
        raise KitError(f"{xml}: not valid XML ({exc}); the drumkit file is damaged") from exc
    _strip_ns(root)
    if root.tag != "drumkit_info":
        raise KitError(f"{xml}: root element is <{root.tag}>, not <drumkit_info>; this is not a Hydrogen drumkit")
    folder = xml.parent
    kit_name = (root.findtext("name") or folder.name).strip()
    cache = _SampleCache()
    instruments: dict[int, list[Instrument]] = {}
    for inst_el in root.iter("instrument"):
        name = (inst_el.findtext("name") or "").strip()
        note = note_for_name(name)
        if note is None and not _SKIP_WORDS.search(name.lower()):
            try:
                midi = int(float(inst_el.findtext("midiOutNote") or "-1"))
            except ValueError:
                midi = -1
            note = midi if midi in GM_KIT_NOTES else None
        if note is None:
            log.debug("%s: instrument %r is not a model class; skipped", xml, name)
            continue
        layer_els = list(inst_el.findall("layer")) + [
            l for comp in inst_el.findall("instrumentComponent") for l in comp.findall("layer")
        ]
        layers: list[SampleLayer] = []
        if not layer_els and inst_el.findtext("filename"):
            layer_els = [inst_el]
        for lay in layer_els:
            filename = (lay.findtext("filename") or "").strip()
            if not filename:
                continue
            samples = cache.load(folder / filename, xml)
            if samples is None:
                continue
            pitch = _float(lay, "pitch", 0.0)
            if abs(pitch) > 1e-3:
                samples = repitch(samples, pitch)
            layers.append(SampleLayer(samples, _float(lay, "min", 0.0), _float(lay, "max", 1.0),
                                      _float(lay, "gain", 1.0)))
        if not layers:
            log.debug("%s: instrument %r has no audible sample; skipped", xml, name)
            continue
        gain = _float(inst_el, "gain", 1.0) * _float(inst_el, "volume", 1.0)
        _add(instruments, Instrument(name or f"note {note}", note, tuple(layers), gain))
    return _finish(kit_name, instruments, folder, "hydrogen")
