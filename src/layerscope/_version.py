"""The installed layerscope version (from the package metadata), importable without the package's API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("layerscope")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"
