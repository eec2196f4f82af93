"""Tokens of an image part by the model's vision rule, without fetching anything.

OpenAI bills images by one of two rules (OpenAI's Images and vision guide, "Calculating costs"):

* **tile** (gpt-4o, gpt-4.1, gpt-4.5, gpt-4o-mini, gpt-5, o1, o3): ``detail: "low"`` costs the
  model's base tokens; ``high`` / ``auto``: scale to fit 2048x2048, then so the shortest side is
  at most 768 px; each 512-px tile costs the model's tile tokens, plus the base. The constants
  differ by model (gpt-4o 85 + 170 per tile, gpt-4o-mini 2833 + 5667, o1/o3 75 + 150, gpt-5
  70 + 140): they live in the capability table (:mod:`backends.capabilities`).
* **patch** (gpt-4.1-mini, gpt-4.1-nano, o4-mini, gpt-5-mini, gpt-5-nano): the number of 32-px
  patches that cover the image, ``ceil(w/32) * ceil(h/32)``; above 1536 the image is scaled down
  to fit 1536 patches (the guide's shrink formula, then whole patches), and the count is capped
  at 1536; times the model's multiplier (1.62, 2.46, 1.72...), rounded up.
  ``detail`` does not change it.

Dimensions are read from the header of a base64 ``data:`` URL (PNG, GIF, JPEG, WebP). An image
given by an http(s) URL is never fetched: it counts as a 1024x1024 image under the model's rule
(765 tokens at high detail for gpt-4o, :data:`UNKNOWN_IMAGE_TOKENS`), a declared default rather
than 0.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_IMAGE_RULE",
    "LOW_DETAIL_TOKENS",
    "UNKNOWN_IMAGE_TOKENS",
    "ImageTokenRule",
    "image_size",
    "image_tokens",
    "patch_count",
    "patch_tokens",
    "tile_tokens",
]

LOW_DETAIL_TOKENS = 85
_TILE_TOKENS = 170
_TILE = 512
_PATCH = 32
_MAX_PATCHES = 1536
#: The size an image of unknown dimensions (an http URL) is counted as.
UNKNOWN_SIZE = (1024, 1024)


def tile_tokens(
    width: int, height: int, *, base: int = LOW_DETAIL_TOKENS, per_tile: int = _TILE_TOKENS
) -> int:
    """High-detail tokens of a ``width``x``height`` image by the tile rule."""
    if width <= 0 or height <= 0:
        return base
    if max(width, height) > 2048:
        scale = 2048 / max(width, height)
        width, height = math.floor(width * scale), math.floor(height * scale)
    if min(width, height) > 768:
        scale = 768 / min(width, height)
        width, height = math.floor(width * scale), math.floor(height * scale)
    tiles = math.ceil(width / _TILE) * math.ceil(height / _TILE)
    return per_tile * tiles + base


def patch_count(width: int, height: int, max_patches: int = _MAX_PATCHES) -> int:
    """32-px patches of an image after the guide's scale-down to ``max_patches``.

    The guide's shrink factor ``sqrt(32**2 * max / (w * h))`` is narrowed so both sides hold a
    whole number of patches. A side narrower than one patch after shrinking stays one patch (the
    guide's formula would make it 0 and the whole image free), and the count is capped at
    ``max_patches`` as the guide states.
    """
    patches = math.ceil(width / _PATCH) * math.ceil(height / _PATCH)
    if patches <= max_patches:
        return patches
    shrink = math.sqrt(_PATCH * _PATCH * max_patches / (width * height))
    fits = [
        math.floor(side * shrink / _PATCH) / (side * shrink / _PATCH)
        for side in (width, height)
        if side * shrink >= _PATCH
    ]
    shrink = min(1.0, shrink * min(fits, default=1.0))
    resized_width = max(1, math.floor(width * shrink))
    resized_height = max(1, math.floor(height * shrink))
    resized = math.ceil(resized_width / _PATCH) * math.ceil(resized_height / _PATCH)
    return min(max_patches, resized)


def patch_tokens(
    width: int, height: int, *, multiplier: float = 1.0, max_patches: int = _MAX_PATCHES
) -> int:
    """Tokens of an image by the patch rule: patches times the model's multiplier, rounded up.

    The guide does not say how a fractional product is rounded; OpenAI's pricing-page calculator
    rounds up (1449 patches x 1.62 = 2347.38 -> 2348), which also errs on the side of a budget.
    """
    return math.ceil(round(patch_count(width, height, max_patches) * multiplier, 6))


@dataclass(frozen=True, slots=True)
class ImageTokenRule:
    """How one model bills an image part (see the module docstring).

    Attributes:
        kind: ``"tile"`` or ``"patch"``.
        base_tokens: tile rule: the fixed part; ``detail: "low"`` costs only this.
        tile_tokens: tile rule: tokens per 512-px tile.
        multiplier: patch rule: tokens per 32-px patch.
        max_patches: patch rule: the patch budget an image is scaled down to.
        exact: False when sources disagree on this model's rule (``note`` says how).
        note: why the rule is not exact, or ``""``.
    """

    kind: Literal["tile", "patch"] = "tile"
    base_tokens: int = LOW_DETAIL_TOKENS
    tile_tokens: int = _TILE_TOKENS
    multiplier: float = 1.0
    max_patches: int = _MAX_PATCHES
    exact: bool = True
    note: str = ""

    def tokens(self, width: int, height: int, detail: str | None = None) -> int:
        """Tokens of a ``width``x``height`` image; non-positive sizes count as unknown."""
        if self.kind == "tile" and detail == "low":
            return self.base_tokens
        if width <= 0 or height <= 0:
            width, height = UNKNOWN_SIZE
        if self.kind == "patch":
            return patch_tokens(
                width, height, multiplier=self.multiplier, max_patches=self.max_patches
            )
        return tile_tokens(width, height, base=self.base_tokens, per_tile=self.tile_tokens)


#: gpt-4o's rule: the default for a model whose rule is not known.
DEFAULT_IMAGE_RULE = ImageTokenRule()

#: A URL image of unknown size counts as a 1024x1024 image at high detail (765 tokens on gpt-4o).
UNKNOWN_IMAGE_TOKENS = DEFAULT_IMAGE_RULE.tokens(*UNKNOWN_SIZE)


def _png(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return None


def _gif(data: bytes) -> tuple[int, int] | None:
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            index += 1
            continue
        marker = data[index + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            index += 2
            continue
        length = struct.unpack(">H", data[index + 2 : index + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


def image_size(url: str) -> tuple[int, int] | None:
    """Width and height of a base64 ``data:`` URL image, or None when it cannot be known."""
    if not url.startswith("data:") or ";base64," not in url[:100]:
        return None
    payload = url.split(",", 1)[1]
    try:
        head = base64.b64decode(payload[: 64 * 1024 // 3 * 4 or None], validate=False)
    except (binascii.Error, ValueError):
        return None
    for reader in (_png, _gif, _webp, _jpeg):
        size = reader(head)
        if size is not None:
            return size
    return None


def image_tokens(url: str, detail: str | None, rule: ImageTokenRule = DEFAULT_IMAGE_RULE) -> int:
    """Tokens for one ``image_url`` part by ``rule`` (never fetches; see module docstring)."""
    size = image_size(url) if rule.kind == "patch" or detail != "low" else None
    return rule.tokens(*(size or UNKNOWN_SIZE), detail)
