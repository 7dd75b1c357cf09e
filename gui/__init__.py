"""idm-studio: the PyQt6 desktop drum editor on top of :mod:`idm_host`.

The GUI calls only ``idm_host``'s public API (never torch or ``idm_host.model``); long calls run on
worker threads (:mod:`gui.jobs`), and views observe the session through :mod:`gui.session_model`.
"""
