"""Training and evaluation: sampled kits, patterns, mixture rendering, losses, the loop, metrics.

Modules:
    kits: Hydrogen, SF2, SFZ and one-shot-folder loaders into :class:`~idm_host.train.kits.SampledKit`.
    patterns: drum MIDI files and a seeded groove generator.
    data: mixtures, stems and onset targets rendered from kit x pattern, with augmentation.
    losses: the multi-resolution STFT loss and the IDM training objective.
    evaluate: per-class SDR / SI-SDR / onset P-R-F on a dataset folder.
    loop: ``idm-host train``.

Nothing here is imported by ``import idm_host``; torch is imported only by ``losses`` and ``loop``.
"""
