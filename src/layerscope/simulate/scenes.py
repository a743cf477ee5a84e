"""Named scenes of ``layerscope simulate``: one phase in bulk, the demo specimen, the validation stacks."""

from __future__ import annotations

from layerscope.errors import InputError

__all__ = ["SCENES", "build_scene"]

SCENES = ("bulk", "demo", "degraded", "spinel")


def build_scene(
    scene: str,
    *,
    phase: str,
    composition: str,
    zone: str,
    width_nm: float,
    height_nm: float,
    thickness_nm: float,
    seed: int,
):
    """The structure of a named scene (``bulk``: one phase; ``demo``: the degraded NMC811 specimen;
    ``degraded``, ``spinel``: the LiCoO2 validation scenes of :func:`~layerscope.crystal.scenes.validation_scene`).

    For ``bulk`` a single block of ``phase`` with as many cation layers as fit ``height_nm``,
    built by :func:`layerscope.crystal.scenes.stack` (random TM decoration over the whole field).
    """
    if scene == "demo":
        from layerscope.simulate.demo import demo_structure

        return demo_structure(seed=seed)
    if scene in ("degraded", "spinel"):
        from layerscope.crystal.scenes import validation_scene

        if composition != "LiCoO2":
            raise InputError(f"--scene {scene} is the LiCoO2 validation stack; --composition {composition!r} does not "
                             f"apply to it (use --scene bulk for other compositions)")
        return validation_scene(scene, zone=zone, thickness_nm=thickness_nm, width_nm=width_nm)
    if scene != "bulk":
        raise InputError(f"--scene {scene!r}: choose one of {', '.join(SCENES)}")
    from layerscope.crystal import lattice
    from layerscope.crystal.scenes import Block, stack

    spacing_nm = lattice(phase, composition).layer_spacing_A / 10.0
    n_layers = max(1, int(round(height_nm / spacing_nm)))
    return stack([Block(phase, n_layers)], composition=composition, zone=zone, width_nm=width_nm,
                 thickness_nm=thickness_nm, seed=seed)
