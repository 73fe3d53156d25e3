"""Small shims so the package runs on Python 3.10+."""

from collections.abc import Sequence  # noqa: F401  (re-exported)

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]  # noqa: F401
