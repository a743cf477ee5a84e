"""Input and output: :func:`load` for microscope files, atomic writers with provenance."""

from layerscope.io.load import SUPPORTED_FORMATS, as_container, load, require_image
from layerscope.io.output import output_directory, write_json, write_summary, write_table

__all__ = [
    "load",
    "as_container",
    "require_image",
    "SUPPORTED_FORMATS",
    "output_directory",
    "write_table",
    "write_json",
    "write_summary",
]
