"""A GitHub App's RSA key, made as GitHub makes one: the forge is given the public half (a seed's
`public_key_file = "app.pub.pem"` or `public_key`), the bot signs its JWTs with the private one."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def app_key_pair(folder: Path) -> str:
    """A new key: its public half written to `folder`/app.pub.pem, its private half returned (PEM)."""
    key = new_key()
    (folder / "app.pub.pem").write_bytes(public_pem(key))
    return private_pem(key)


# The App of a forge's seed: the sandbox reads its public key from app.pub.pem (app_key_pair writes it there).
APP_ID, INSTALLATION_ID = 123, 456
APP_SEED = f"""\
[[apps]]
id = {APP_ID}
slug = "mlops-bot"
installation_id = {INSTALLATION_ID}
public_key_file = "app.pub.pem"
"""
