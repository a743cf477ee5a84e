"""Bulk spectroscopy of cathodes: X-ray absorption (valence), impedance (EIS) and gas evolution (DEMS, TGA-MS).

One module per technique: :mod:`layerscope.bulk.xas`, :mod:`layerscope.bulk.eis`,
:mod:`layerscope.bulk.gas`. Each has a frozen Options dataclass, readers that turn files into arrays,
an ``analyse`` function without file I/O and a result whose ``write`` method writes the outputs.
"""
