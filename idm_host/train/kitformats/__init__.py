"""One module per kit format (:mod:`.hydrogen`, :mod:`.sfz`, :mod:`.sf2`, :mod:`.folder`) over what they
share (:mod:`.base`), behind the one loader :func:`idm_host.train.kits.load_kit`, which re-exports
their public names; import from :mod:`idm_host.train.kits`."""
