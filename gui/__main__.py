"""``python -m gui [FILE]`` starts idm-studio."""
import sys

from .app import main

sys.exit(main())
