"""Neural enhancement of low-dose HAADF images: a compact U-Net that denoises and marks columns.

The network takes one HAADF image at a fixed sampling (``model_pixel_size_nm`` of the shipped
weights, 0.02 nm) and returns two maps of the same size:

``denoised``
    An estimate of the noise-free image, in the units of the input (trained with an L1 loss
    against the noise-free simulated image).
``column_probability``
    A map in 0..1 that is 1 on the centre of every column that holds transition-metal atoms (TM
    columns, and Li-layer columns with TM: Li/TM mixing, rock salt, spinel) and falls off as a
    Gaussian of ``target_sigma_nm`` around it (trained with a binary cross-entropy against
    Gaussians drawn at the true column positions). Pure Li and O columns, which HAADF barely
    shows, are 0.

Any pixel size works: :func:`enhance` resamples the image onto the model's sampling (area-averaging
when shrinking, so Poisson counts keep their statistics), runs the network tile by tile with a halo
of context around each tile (the overlap-tile strategy of Ronneberger et al., so the result does not
depend on how the image is cut), and resamples both maps back onto the input grid. The physical extent is kept exactly,
so the pixel-centre convention ``x_nm = (col + 0.5) * pixel_size_nm`` holds on both grids.

Weights ship inside the package (``layerscope/imaging/weights/enhancer.pt``, with the training
record ``enhancer.json``) and load offline through :mod:`importlib.resources`; they were trained by
``scripts/train_enhancer.py`` on images of the project's simulator (:mod:`layerscope.simulate`),
never downloaded. Whether the enhancer helps column finding is measured in
``docs/validation.md`` (section "Neural enhancer").

References
----------
- O. Ronneberger, P. Fischer and T. Brox, "U-Net: convolutional networks for biomedical image
  segmentation", MICCAI 2015, LNCS 9351, 234 (2015): the encoder-decoder with skip connections.
- J. Lehtinen et al., "Noise2Noise: learning image restoration without clean data", ICML 2018, and K.
  Zhang et al., "Beyond a Gaussian denoiser", IEEE Trans. Image Process. 26, 3142 (2017): CNN
  denoising trained on pairs of noisy inputs and clean targets.
- J. Madsen et al., "A deep learning approach to identify local structures in atomic-resolution
  transmission electron microscopy images", Adv. Theory Simul. 1, 1800037 (2018), and R.
  Lin et al., "TEMImageNet training library and AtomSegNet deep-learning models for
  high-precision atom segmentation, localization, denoising, and deblurring of atomic-resolution
  images", Sci. Rep. 11, 5386 (2021): networks trained on simulated STEM images that output
  column maps.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.errors import InputError, LayerscopeError
from layerscope.provenance import Provenance

__all__ = [
    "EnhanceResult",
    "EnhancerConfig",
    "EnhancerWeightsError",
    "UNet",
    "enhance",
    "load_enhancer",
    "resample_to_pixel_size",
    "normalise",
    "probability_peaks",
    "weights_card",
    "WEIGHTS_FILE",
    "CARD_FILE",
]

#: Name of the shipped weights file inside ``layerscope/imaging/weights``.
WEIGHTS_FILE = "enhancer.pt"
#: Name of the training record (model card) next to it.
CARD_FILE = "enhancer.json"
#: Largest weights file the package may ship, in bytes (the issue's 20 MB budget).
MAX_WEIGHTS_BYTES = 20 * 1024 * 1024


class EnhancerWeightsError(LayerscopeError, RuntimeError):
    """The enhancer's weights file is missing, unreadable or does not fit the model."""


@dataclass(frozen=True)
class EnhancerConfig:
    """What a weights file says about the network and the sampling it was trained at.

    Attributes
    ----------
    base_channels : int
        Channels of the first encoder level (doubled at each level down).
    depth : int
        Number of 2x down-samplings (encoder levels below the first).
    model_pixel_size_nm : float
        The sampling (nm per pixel) the network was trained at; inputs are resampled to it.
    target_sigma_nm : float
        Standard deviation (nm) of the Gaussians of the column-probability target.
    min_pixel_size_nm, max_pixel_size_nm : float
        Range of input pixel sizes (nm) accepted by :func:`enhance`. Up-sampling coarser images than
        the training covered would invent detail, so coarser inputs are refused.
    """

    base_channels: int
    depth: int
    model_pixel_size_nm: float
    target_sigma_nm: float
    min_pixel_size_nm: float
    max_pixel_size_nm: float

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "EnhancerConfig":
        """Build from a dictionary (the ``config`` entry of a weights file)."""
        try:
            return cls(
                base_channels=int(values["base_channels"]),
                depth=int(values["depth"]),
                model_pixel_size_nm=float(values["model_pixel_size_nm"]),
                target_sigma_nm=float(values["target_sigma_nm"]),
                min_pixel_size_nm=float(values["min_pixel_size_nm"]),
                max_pixel_size_nm=float(values["max_pixel_size_nm"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EnhancerWeightsError(
                f"the enhancer's weights file has an incomplete or invalid 'config' ({exc!r}); retrain it with "
                f"scripts/train_enhancer.py or reinstall layerscope"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary."""
        return dict(self.__dict__)


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a hard dependency
        raise LayerscopeError(
            f"the neural enhancer needs PyTorch, which failed to import ({exc}); install it with "
            f"'pip install torch'"
        ) from None
    return torch


def _build_unet_class():
    torch = _torch()
    nn = torch.nn

    class _Block(nn.Sequential):
        def __init__(self, c_in: int, c_out: int):
            super().__init__(
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            )

    class UNet(nn.Module):
        """Compact U-Net (Ronneberger et al. 2015) with two output maps.

        Encoder levels of ``base, 2 base, 4 base, ...`` channels (``depth`` 2x max-poolings),
        bilinear up-sampling with skip connections, BatchNorm (its running statistics make the
        network a fixed local operator at inference, so tiles agree). Output channel 0: the
        denoised image in normalised units; channel 1: the column-probability logit.

        Parameters
        ----------
        base_channels : int
            Channels of the first level.
        depth : int
            Number of down-samplings; the input size must be a multiple of ``2**depth``.
        """

        def __init__(self, base_channels: int = 16, depth: int = 3):
            super().__init__()
            if base_channels < 1 or depth < 1:
                raise InputError(f"base_channels={base_channels} and depth={depth} must be positive integers")
            self.depth = int(depth)
            chans = [base_channels * 2**k for k in range(depth + 1)]
            self.down = nn.ModuleList([_Block(1, chans[0])] + [_Block(chans[k - 1], chans[k]) for k in range(1, depth + 1)])
            self.up = nn.ModuleList([_Block(chans[k + 1] + chans[k], chans[k]) for k in range(depth)])
            self.head = nn.Conv2d(chans[0], 2, 1)

        def forward(self, x):  # noqa: D102 - torch API
            skips = []
            for k, block in enumerate(self.down):
                x = block(x if k == 0 else torch.nn.functional.max_pool2d(x, 2))
                skips.append(x)
            x = skips.pop()
            for k in reversed(range(self.depth)):
                x = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
                x = self.up[k](torch.cat([x, skips.pop()], dim=1))
            return self.head(x)

    return UNet


def __getattr__(name: str):
    # ``UNet`` is built on first access so that importing layerscope.imaging does not import torch.
    if name == "UNet":
        return _unet_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=1)
def _unet_class():
    return _build_unet_class()


@dataclass(frozen=True)
class _Enhancer:
    model: Any
    config: EnhancerConfig
    sha256: str
    source: str


def _read_weights_bytes(path: str | Path | None) -> tuple[bytes, str]:
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise EnhancerWeightsError(
                f"enhancer weights file {p} does not exist; give the path of a file written by "
                f"scripts/train_enhancer.py"
            )
        return p.read_bytes(), str(p)
    ref = resources.files("layerscope.imaging") / "weights" / WEIGHTS_FILE
    try:
        data = ref.read_bytes()
    except (FileNotFoundError, OSError):
        raise EnhancerWeightsError(
            f"the enhancer's weights (layerscope/imaging/weights/{WEIGHTS_FILE}) are missing from the "
            f"installed package; reinstall layerscope (the file ships with it) or train them with "
            f"'python scripts/train_enhancer.py'"
        ) from None
    return data, f"layerscope/imaging/weights/{WEIGHTS_FILE}"


def load_enhancer(path: str | Path | None = None, *, device: str = "cpu") -> _Enhancer:
    """Load the enhancer's network and configuration (the shipped weights by default).

    Parameters
    ----------
    path : str or Path, optional
        A weights file written by ``scripts/train_enhancer.py``; default: the file shipped inside
        the package, read with :mod:`importlib.resources` (no network).
    device : str
        Torch device to place the network on ("cpu", "cuda", "cuda:1", ...).

    Returns
    -------
    object
        With ``model`` (a :class:`UNet` in eval mode), ``config`` (:class:`EnhancerConfig`),
        ``sha256`` (of the weights file) and ``source`` (where it was read from).

    Raises
    ------
    EnhancerWeightsError
        When the file is missing, is not a weights file, or does not fit the network it describes.
    """
    data, source = _read_weights_bytes(path)
    return _load_cached(data, source, str(device)) if path is None else _load(data, source, str(device))


@lru_cache(maxsize=4)
def _load_cached(data: bytes, source: str, device: str) -> _Enhancer:
    return _load(data, source, device)


def _load(data: bytes, source: str, device: str) -> _Enhancer:
    torch = _torch()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a damaged file
        raise EnhancerWeightsError(
            f"the enhancer weights file {source} cannot be read ({type(exc).__name__}: {str(exc)[:120]}); it is "
            f"damaged or not a layerscope weights file: reinstall layerscope or retrain with "
            f"scripts/train_enhancer.py"
        ) from None
    if not isinstance(payload, dict) or "state_dict" not in payload or "config" not in payload:
        raise EnhancerWeightsError(
            f"the enhancer weights file {source} lacks 'state_dict'/'config' entries; it was not written by "
            f"scripts/train_enhancer.py: reinstall layerscope or retrain"
        )
    config = EnhancerConfig.from_dict(payload["config"])
    model = _unet_class()(config.base_channels, config.depth)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise EnhancerWeightsError(
            f"the enhancer weights in {source} do not fit a U-Net with base_channels={config.base_channels}, "
            f"depth={config.depth} ({str(exc)[:160]}); the file is inconsistent: retrain with "
            f"scripts/train_enhancer.py"
        ) from None
    model.eval()
    model.to(device)
    return _Enhancer(model, config, hashlib.sha256(data).hexdigest(), source)


def _resolve_device(device: str) -> str:
    torch = _torch()
    if not isinstance(device, str):
        raise InputError(f"device={device!r} must be a string: 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(
                f"device={device!r} was asked for but PyTorch sees no CUDA GPU; use device='cpu' or 'auto'"
            )
        try:
            torch.device(device)
        except RuntimeError:
            raise InputError(f"device={device!r} is not a valid CUDA device name (use 'cuda' or 'cuda:0')") from None
        return device
    raise InputError(f"device={device!r} is not known; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def _as_image(image: np.ndarray) -> np.ndarray:
    """The image as float64, refused (InputError) when colour, not 2-D, not numeric or not finite."""
    from layerscope.imaging.columns import as_float_image

    return as_float_image(image, "image")


def resample_to_pixel_size(
    image: np.ndarray, *, pixel_size_nm: float, target_pixel_size_nm: float | None = None,
    shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Resample an image onto another pixel size, keeping its physical extent.

    Shrinking averages (a Gaussian anti-aliasing pre-filter of ``(factor - 1) / 2`` pixels, then
    linear interpolation), so that the noise of many small pixels adds up as it would in one large
    pixel; enlarging uses cubic-spline interpolation. The pixel-centre convention is kept: the
    output pixel ``(i + 0.5) * new`` samples the input at the same physical position.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    pixel_size_nm : float
        Its pixel size in nm.
    target_pixel_size_nm : float, optional
        The wanted pixel size in nm; the output has ``round(extent / target)`` pixels per axis, so
        its pixel size is the target to within half a pixel over the extent.
    shape : (int, int), optional
        The output shape instead of ``target_pixel_size_nm`` (used to go back to an input grid).

    Returns
    -------
    numpy.ndarray
        ``float64`` image.

    References
    ----------
    scikit-image :func:`skimage.transform.resize` (corner-aligned resampling with anti-aliasing).
    """
    from skimage.transform import resize

    data = _as_image(image)
    if (target_pixel_size_nm is None) == (shape is None):
        raise InputError("give exactly one of target_pixel_size_nm and shape")
    if shape is None:
        if not (target_pixel_size_nm and target_pixel_size_nm > 0 and pixel_size_nm > 0):
            raise InputError(
                f"pixel sizes must be positive (got {pixel_size_nm} and {target_pixel_size_nm} nm)"
            )
        factor = pixel_size_nm / target_pixel_size_nm
        shape = (max(1, int(round(data.shape[0] * factor))), max(1, int(round(data.shape[1] * factor))))
    shape = (int(shape[0]), int(shape[1]))
    if shape == data.shape:
        return data.copy()
    shrinking = shape[0] < data.shape[0]
    return resize(
        data, shape, order=1 if shrinking else 3, mode="reflect", anti_aliasing=shrinking, preserve_range=True
    )


def normalise(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Affine normalisation used for the network input: ``(image - mean) / std``.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.

    Returns
    -------
    normalised : numpy.ndarray
        ``float32`` image of zero mean and unit standard deviation.
    mean, std : float
        The offset and scale (image units), to undo the normalisation on the denoised output.

    Raises
    ------
    InputError
        For a constant image (no contrast to enhance).
    """
    data = _as_image(image)
    mean = float(data.mean())
    std = float(data.std())
    if not std > 1e-12 * max(1.0, abs(mean)):
        raise InputError("image is constant (no contrast); there is nothing to enhance: check the frame selected")
    return ((data - mean) / std).astype(np.float32), mean, std


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def _run_tiled(model, data: np.ndarray, *, tile: int, halo: int, multiple: int, device: str,
               batch: int = 4) -> np.ndarray:
    """Network output (2, H, W) of a normalised image by overlap-tiling (Ronneberger et al. 2015).

    The image is mirrored by ``halo`` pixels on every side (and a little more at the bottom and
    right to fill the last tiles); each tile core of at most ``tile - 2 * halo`` pixels is run with
    its halo of context and only the core is kept. Tile corners sit on multiples of the network's
    pooling factor, so every output pixel sees the same context on the same pooling grid however
    the image is cut; tiled and one-pass results then differ only by what lies beyond the halo.
    """
    torch = _torch()
    ny, nx = data.shape
    halo = _round_up(halo, multiple)
    core_max = max(multiple, ((tile - 2 * halo) // multiple) * multiple)
    core_y, core_x = min(core_max, _round_up(ny, multiple)), min(core_max, _round_up(nx, multiple))
    n_ty, n_tx = -(-ny // core_y), -(-nx // core_x)
    padded = np.pad(data, ((halo, halo + n_ty * core_y - ny), (halo, halo + n_tx * core_x - nx)), mode="symmetric")
    in_y, in_x = core_y + 2 * halo, core_x + 2 * halo
    out = np.zeros((2, n_ty * core_y, n_tx * core_x), dtype=np.float32)
    corners = [(i * core_y, j * core_x) for i in range(n_ty) for j in range(n_tx)]
    with torch.inference_mode():
        for start in range(0, len(corners), batch):
            group = corners[start : start + batch]
            stack = np.stack([padded[r : r + in_y, c : c + in_x] for r, c in group])[:, None]
            result = model(torch.from_numpy(np.ascontiguousarray(stack)).to(device)).float().cpu().numpy()
            for (r, c), res in zip(group, result):
                out[:, r : r + core_y, c : c + core_x] = res[:, halo : halo + core_y, halo : halo + core_x]
    return out[:, :ny, :nx]


@dataclass(frozen=True)
class EnhanceResult:
    """The enhancer's output on the input's pixel grid.

    Attributes
    ----------
    denoised : numpy.ndarray
        ``float32`` estimate of the noise-free image, same shape and units as the input.
    column_probability : numpy.ndarray
        ``float32`` map in 0..1: 1 on the centre of a TM-bearing column, a Gaussian of
        ``config.target_sigma_nm`` around it, 0 elsewhere.
    pixel_size_nm : float
        Pixel size of both maps (the input's), in nm.
    model_pixel_size_nm : float
        The sampling the network ran at, in nm (the image was resampled to it and back).
    device : str
        Torch device used.
    provenance : layerscope.provenance.Provenance
        Input hash, parameters (tile size, halo, weights SHA-256 and source).
    """

    denoised: np.ndarray
    column_probability: np.ndarray
    pixel_size_nm: float
    model_pixel_size_nm: float
    device: str
    provenance: Provenance = field(repr=False)


def enhance(
    image: np.ndarray,
    *,
    pixel_size_nm: float,
    device: str = "auto",
    tile_px: int = 384,
    halo_px: int = 48,
    weights: str | Path | None = None,
) -> EnhanceResult:
    """Denoise a HAADF image and map its TM-bearing columns with the shipped U-Net.

    The image is normalised (``(x - mean) / std``), resampled to the model's pixel size,
    processed in tiles of at most ``tile_px`` model pixels that each carry ``halo_px`` pixels of
    context on every side (overlap-tile strategy; the image border is mirrored), and both output
    maps are resampled back onto the input grid; the denoised map is returned in the input's units.

    Parameters
    ----------
    image : numpy.ndarray
        2-D HAADF image (counts or any linear intensity; not log-scaled, not contrast-stretched).
    pixel_size_nm : float
        Its pixel size in nm (between ``config.min_pixel_size_nm`` and ``config.max_pixel_size_nm``
        of the weights: 0.002-0.04 nm for the shipped ones).
    device : str
        "auto" (a CUDA GPU when PyTorch sees one, else the CPU), "cpu", "cuda" or "cuda:N".
    tile_px : int
        Network input size in model pixels, halo included (bounds memory; 384 model pixels =
        7.7 nm).
    halo_px : int
        Context kept around each tile's core, in model pixels. The network's receptive field is
        ~96 pixels wide; 48 pixels (0.96 nm) keeps tiled and one-pass results within 1e-5 of the
        map range (32 pixels: 4e-3; ``tests/imaging/test_enhance.py``). Rounded up to a multiple of
        the pooling factor (8).
    weights : str or Path, optional
        Another weights file (default: the shipped one).

    Returns
    -------
    EnhanceResult
        ``denoised`` and ``column_probability`` on the input grid, with provenance.

    Raises
    ------
    InputError
        For a non-2-D, non-finite or constant image, or an unknown/unavailable device.
    CalibrationError
        For a pixel size outside the range the network covers.
    EnhancerWeightsError
        For missing or damaged weights.

    Notes
    -----
    The network was trained on simulated images (see the weights card ``enhancer.json``):
    an image unlike them (other materials, other detectors, strong drift) can be enhanced into
    plausible-looking but wrong columns. Always check positions against the raw image, e.g.
    refine them on the raw data with :func:`layerscope.imaging.columns.refine_columns`.
    """
    from layerscope.errors import CalibrationError

    data = _as_image(image)
    if not (isinstance(pixel_size_nm, (int, float, np.floating)) and np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
        raise CalibrationError(f"pixel_size_nm={pixel_size_nm!r} must be a positive pixel size in nm (e.g. 0.01)")
    for name, value in (("tile_px", tile_px), ("halo_px", halo_px)):
        if int(value) != value or value < 0:
            raise InputError(f"{name}={value!r} must be a non-negative integer number of pixels")
    dev = _resolve_device(device)
    enhancer = load_enhancer(weights, device=dev)
    cfg = enhancer.config
    multiple = 2**cfg.depth
    if tile_px - 2 * _round_up(halo_px, multiple) < multiple:
        raise InputError(
            f"tile_px={tile_px} leaves no core after a halo of {halo_px} pixels on each side; use tile_px >= "
            f"2 * halo_px + {multiple}"
        )
    if not (cfg.min_pixel_size_nm <= pixel_size_nm <= cfg.max_pixel_size_nm):
        raise CalibrationError(
            f"pixel_size_nm={pixel_size_nm} is outside the range the enhancer covers "
            f"({cfg.min_pixel_size_nm}-{cfg.max_pixel_size_nm} nm); check the calibration, or bin/crop the image "
            f"to a pixel size in that range"
        )
    small = resample_to_pixel_size(data, pixel_size_nm=pixel_size_nm, target_pixel_size_nm=cfg.model_pixel_size_nm)
    if min(small.shape) < multiple * 2:
        raise InputError(
            f"image of {data.shape} pixels at {pixel_size_nm} nm is only {small.shape} pixels at the model's "
            f"{cfg.model_pixel_size_nm} nm; give at least {multiple * 2 * cfg.model_pixel_size_nm:.2f} nm per side"
        )
    norm, mean, std = normalise(small)
    raw = _run_tiled(enhancer.model, norm, tile=int(tile_px), halo=int(halo_px), multiple=multiple, device=dev)
    denoised_small = raw[0] * std + mean
    prob_small = 1.0 / (1.0 + np.exp(-np.clip(raw[1], -60, 60)))
    denoised = resample_to_pixel_size(denoised_small, pixel_size_nm=1.0, shape=data.shape)
    prob = np.clip(resample_to_pixel_size(prob_small, pixel_size_nm=1.0, shape=data.shape), 0.0, 1.0)
    provenance = Provenance.create(
        inputs=[data],
        parameters={
            "analysis": "imaging.enhance",
            "pixel_size_nm": float(pixel_size_nm),
            "model_pixel_size_nm": cfg.model_pixel_size_nm,
            "tile_px": int(tile_px),
            "halo_px": int(halo_px),
            "device": dev,
            "weights_sha256": enhancer.sha256,
            "weights_source": enhancer.source,
            "model": cfg.to_dict(),
        },
    )
    return EnhanceResult(
        denoised=denoised.astype(np.float32),
        column_probability=prob.astype(np.float32),
        pixel_size_nm=float(pixel_size_nm),
        model_pixel_size_nm=cfg.model_pixel_size_nm,
        device=dev,
        provenance=provenance,
    )


def probability_peaks(
    probability: np.ndarray,
    *,
    pixel_size_nm: float,
    min_separation_nm: float,
    threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Column positions from a column-probability map: local maxima above ``threshold``.

    Each maximum is refined to sub-pixel precision by a parabola through the logarithms of the
    maximum and its two neighbours along each axis (exact for a Gaussian peak, which is what the
    network is trained to draw). Use the positions as seeds for
    :func:`layerscope.imaging.columns.refine_columns` on the raw (or denoised) image.

    Parameters
    ----------
    probability : numpy.ndarray
        2-D map in 0..1 (``EnhanceResult.column_probability``).
    pixel_size_nm : float
        Pixel size in nm.
    min_separation_nm : float
        Smallest column separation (nm); maxima closer than 0.45 of it are merged.
    threshold : float
        Smallest peak probability of a column.

    Returns
    -------
    rows, cols : numpy.ndarray
        Fractional pixel indices of the columns.
    """
    from scipy import ndimage

    prob = _as_image(probability)
    if not (pixel_size_nm > 0 and min_separation_nm > 0):
        raise InputError(f"pixel_size_nm ({pixel_size_nm}) and min_separation_nm ({min_separation_nm}) must be positive")
    if not 0 < threshold < 1:
        raise InputError(f"threshold={threshold} must lie strictly between 0 and 1")
    half = max(1, int(np.floor(0.45 * min_separation_nm / pixel_size_nm)))
    footprint = np.ones((2 * half + 1,) * 2, dtype=bool)
    peaks = (ndimage.maximum_filter(prob, footprint=footprint, mode="nearest") == prob) & (prob >= threshold)
    rows, cols = np.nonzero(peaks)
    if rows.size == 0:
        return rows.astype(float), cols.astype(float)
    # plateaus: keep one maximum per connected group
    labels, n = ndimage.label(peaks)
    index = np.arange(1, n + 1)
    rows_c, cols_c = np.array(ndimage.center_of_mass(peaks, labels, index)).reshape(-1, 2).T
    r0 = np.clip(np.rint(rows_c).astype(int), 0, prob.shape[0] - 1)
    c0 = np.clip(np.rint(cols_c).astype(int), 0, prob.shape[1] - 1)
    return r0 + _log_parabola(prob, r0, c0, axis=0), c0 + _log_parabola(prob, r0, c0, axis=1)


def _log_parabola(prob: np.ndarray, r0: np.ndarray, c0: np.ndarray, *, axis: int) -> np.ndarray:
    """Sub-pixel offset of a peak from the parabola through the logs of three samples.

    Exact for a sampled Gaussian (its log is a parabola); limited to +-0.5 pixel, 0 at the border.
    """
    n = prob.shape[axis]
    centre = r0 if axis == 0 else c0
    lo = np.clip(centre - 1, 0, n - 1)
    hi = np.clip(centre + 1, 0, n - 1)
    pick = (lambda i: prob[i, c0]) if axis == 0 else (lambda i: prob[r0, i])
    tiny = 1e-12
    f_lo, f_0, f_hi = (np.log(np.maximum(pick(i), tiny)) for i in (lo, centre, hi))
    curvature = f_lo - 2.0 * f_0 + f_hi
    inside = (centre > 0) & (centre < n - 1) & (curvature < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(inside, 0.5 * (f_lo - f_hi) / np.where(inside, curvature, -1.0), 0.0)
    return np.clip(offset, -0.5, 0.5)


def weights_card() -> dict[str, Any]:
    """The training record shipped next to the weights (``enhancer.json``) as a dictionary."""
    ref = resources.files("layerscope.imaging") / "weights" / CARD_FILE
    try:
        return json.loads(ref.read_text(encoding="utf-8"))
    except (FileNotFoundError, OSError, json.JSONDecodeError) as exc:
        raise EnhancerWeightsError(
            f"the enhancer's model card layerscope/imaging/weights/{CARD_FILE} is missing or invalid ({exc}); "
            f"reinstall layerscope or retrain with scripts/train_enhancer.py"
        ) from None
