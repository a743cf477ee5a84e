"""``python -m layerscope`` runs the command line."""

from layerscope.cli import main

main()
