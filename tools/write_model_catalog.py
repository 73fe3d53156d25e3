"""Write ``src/lrfer/assets/models.json``: the model registry as the table ``lrfer models`` prints.

    python tools/write_model_catalog.py

``lrfer models`` reads this file so that it answers in a blink and without PyTorch; run this after
adding or changing a registered model (tests/models/test_catalog.py fails until you do).
"""

from __future__ import annotations

import json

from lrfer.files import atomic_write_text
from lrfer.models._registry import catalog
from lrfer.runtime.catalog import CATALOG


def main() -> None:
    rows = catalog()
    atomic_write_text(CATALOG, json.dumps(rows, indent=1) + "\n")
    print(f"wrote {len(rows)} models to {CATALOG}")


if __name__ == "__main__":
    main()
