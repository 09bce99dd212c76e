"""``python -m pybackprop.bench``: the same options as ``pybackprop bench``."""
import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover - importing this module runs nothing
    sys.exit(main())
