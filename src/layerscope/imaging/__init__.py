"""Atomic-resolution imaging of layered-oxide cathodes: columns, lattice, phases, domains, quantities.

One module per concept:

- :mod:`.columns` -- sub-pixel atom-column finding (matched filter, batched Poisson-ML Gaussian fits);
- :mod:`.lattice` -- basal-plane orientation by FFT, rows, cation layers, TM-TM pairs and registry;
- :mod:`.phases` -- stacking relations, Li-layer environment, per-column phase labels;
- :mod:`.sitetests` -- decisions at a lattice site from its counts (amplitude errors, the
  per-column mixing call, columns next to a rim);
- :mod:`.domains` -- domains, the phase-map image, interfaces between blocks;
- :mod:`.quantities` -- spacings, strain, planar gliding, surface-layer thickness;
- :mod:`.pipeline` -- :func:`~.pipeline.find_atom_columns` and :func:`~.pipeline.map_phases`;
- :mod:`.options` -- ``ColumnsOptions``, ``PhasesOptions`` and the image input of both analyses;
- :mod:`.generic` -- ``layerscope columns`` (any crystal, no material model);
- :mod:`.report` -- files, overlay figure and report section; :mod:`.demo` -- the demo section;
- :mod:`.scoring` -- scoring against simulated ground truth (tests, validation);
- :mod:`.enhance` -- the neural enhancer (optional, PyTorch; imported only when asked for).

Importing this package imports nothing heavy; use the submodules.
"""
