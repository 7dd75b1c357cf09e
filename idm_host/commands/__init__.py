"""Sub-commands of ``idm-host``: one module each, with ``register(subparsers)``.

Modules whose names start with ``_`` are helpers, not commands.
"""
