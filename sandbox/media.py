"""Uploaded files: stored in memory, described as Telegram PhotoSize/File objects."""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

# Telegram refuses photos over 10 MB.
MAX_PHOTO_BYTES = 10 * 1024 * 1024


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    mime_type: str
    file_path: str
    width: int = 0
    height: int = 0

    def photo_size(self) -> dict:
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id,
                "width": self.width, "height": self.height, "file_size": len(self.data)}

    def file_object(self) -> dict:
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id,
                "file_size": len(self.data), "file_path": self.file_path}


def make_file(number: int, data: bytes, kind: str = "photos") -> StoredFile:
    mime, extension = sniff_type(data)
    width, height = image_size(data)
    digest = hashlib.sha1(data).hexdigest()
    return StoredFile(file_id=f"sandbox-{kind[:-1]}-{number}-{digest[:12]}",
                      file_unique_id=f"u{digest[:15]}", data=data, mime_type=mime,
                      file_path=f"{kind}/file_{number}.{extension}", width=width, height=height)


def sniff_type(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg", "jpg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif", "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return "application/octet-stream", "bin"


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) read from a PNG, GIF or JPEG header; (0, 0) when unknown."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return 0, 0


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return 0, 0
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 and CC (DAC) share the range but do not.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    return 0, 0


def tiny_png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (51, 144, 236)) -> bytes:
    """A valid single-colour PNG, for tests that upload photos."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))
