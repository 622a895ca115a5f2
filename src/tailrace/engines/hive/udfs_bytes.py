"""Hive's hashing and encryption UDFs over bytes: sha2 (224/256/384/512), aes_encrypt and
aes_decrypt (AES/ECB/PKCS5Padding, as Java's default "AES" cipher: the Language Manual's
`base64(aes_encrypt('ABC', '1234567890123456'))` is 'y6Ss+zCYObpCbgfWfyNWTw==')."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_SHA2 = {0: "sha256", 224: "sha224", 256: "sha256", 384: "sha384", 512: "sha512"}
_KEY_BYTES = (16, 24, 32)


def sha2(text: str, bits: int) -> str | None:
    """Hex digest of the UTF-8 bytes; NULL for a length Hive does not know (as Hive)."""
    algo = _SHA2.get(bits)
    return None if algo is None else hashlib.new(algo, text.encode("utf-8")).hexdigest()


def _key(key: str) -> bytes | None:
    raw = key.encode("utf-8")
    return raw if len(raw) in _KEY_BYTES else None  # Hive: NULL for a key of another length


def aes_encrypt(data: str, key: str) -> bytes | None:
    raw = _key(key)
    if raw is None:
        return None
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data.encode("utf-8")) + padder.finalize()
    enc = Cipher(algorithms.AES(raw), modes.ECB()).encryptor()  # ECB: what Hive uses
    return enc.update(padded) + enc.finalize()


def aes_decrypt(data: bytes, key: str) -> bytes | None:
    raw = _key(key)
    if raw is None or len(data) % 16:
        return None
    dec = Cipher(algorithms.AES(raw), modes.ECB()).decryptor()
    padded = dec.update(data) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None  # wrong key: Hive answers NULL
