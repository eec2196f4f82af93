"""Tokens of an image part by OpenAI's vision tile rule, without fetching anything.

* ``detail: "low"``: 85 tokens.
* ``high`` / ``auto``: scale to fit 2048x2048, then so the shortest side is at most 768 px;
  170 tokens per 512-px tile, plus 85.

Dimensions are read from the header of a base64 ``data:`` URL (PNG, GIF, JPEG, WebP). An image
given by an http(s) URL is never fetched: it counts as :data:`UNKNOWN_IMAGE_TOKENS`, the high
detail cost of a 1024x1024 image, a declared default rather than 0.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct

__all__ = ["LOW_DETAIL_TOKENS", "UNKNOWN_IMAGE_TOKENS", "image_size", "image_tokens", "tile_tokens"]

LOW_DETAIL_TOKENS = 85
_TILE_TOKENS = 170
_TILE = 512


def tile_tokens(width: int, height: int) -> int:
    """High-detail tokens of a ``width``x``height`` image by the tile rule."""
    if width <= 0 or height <= 0:
        return LOW_DETAIL_TOKENS
    if max(width, height) > 2048:
        scale = 2048 / max(width, height)
        width, height = math.floor(width * scale), math.floor(height * scale)
    if min(width, height) > 768:
        scale = 768 / min(width, height)
        width, height = math.floor(width * scale), math.floor(height * scale)
    tiles = math.ceil(width / _TILE) * math.ceil(height / _TILE)
    return _TILE_TOKENS * tiles + LOW_DETAIL_TOKENS


#: A URL image of unknown size counts as a 1024x1024 image at high detail (765 tokens).
UNKNOWN_IMAGE_TOKENS = tile_tokens(1024, 1024)


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


def image_tokens(url: str, detail: str | None) -> int:
    """Tokens for one ``image_url`` part (never fetches; see module docstring)."""
    if detail == "low":
        return LOW_DETAIL_TOKENS
    size = image_size(url)
    if size is None:
        return UNKNOWN_IMAGE_TOKENS
    return tile_tokens(*size)
