"""Where the project's own modules (``app``, ``services``, ``components``) live, and making
them importable for ``tapescope``.

The distribution installs one top-level package, ``tapescope`` (``pip install -e .``; see
``pyproject.toml``), so no generic name lands in anyone's site-packages. The project's
modules stay in the repository next to this package; importing ``tapescope`` puts the
repository on ``sys.path`` of the importing process (and nothing else), once.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ensure_importable() -> Path:
    """Put the repository root first on ``sys.path`` (once) and return it; a clear error
    when this package was copied away from its repository (a non-editable install)."""
    if not (ROOT / "services" / "market" / "feed.py").is_file():
        raise ImportError(
            f"tapescope must run from its repository (found none at {ROOT}); "
            "install it with `pip install -e <repository>`"
        )
    root = str(ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)
    return ROOT
