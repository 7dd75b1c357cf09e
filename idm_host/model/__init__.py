"""The IDM network (IDM-SPEC.md), written for idm-host. Imports torch; the GUI never imports this."""
from .config import OFFICIAL_KITS, IDMConfig
from .idm import IDM

__all__ = ["IDM", "IDMConfig", "OFFICIAL_KITS"]
