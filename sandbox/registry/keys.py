"""The platform's signing key for registry bearer tokens: an RSA key pair and a self-signed certificate, made once."""
from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings

KEY_FILE, CERT_FILE = "token.key", "token.crt"


@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes
    certificate_path: Path  # the registry's `auth.token.rootcertbundle`
    kid: str  # the key id the registry looks the certificate's key up by


def keys_dir() -> Path:
    return Path(settings.SANDCLOUD_REGISTRY["DIR"]) / "keys"


def libtrust_key_id(public_key) -> str:
    """The key id distribution 2.8 computes for a trusted certificate's key (docker/libtrust's fingerprint: the
    SHA-256 of the DER public key, cut to 240 bits, base 32, in groups of four), which a token's `kid` must name."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(text[i:i + 4] for i in range(0, len(text), 4))


def _key_pair_write(directory: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sandcloud registry token issuer")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    (directory / KEY_FILE).write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    os.chmod(directory / KEY_FILE, 0o600)
    (directory / CERT_FILE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def signing_key_ensure() -> SigningKey:
    """The key pair under SANDCLOUD_REGISTRY["DIR"]/keys, made the first time: written into a fresh directory that is
    renamed into place, so two processes starting together never see half a pair (the loser's rename fails and it
    reads the winner's)."""
    directory = keys_dir()
    if not (directory / CERT_FILE).exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".keys-", dir=directory.parent))
        try:
            _key_pair_write(staging)
            os.rename(staging, directory)
        except OSError:
            if not (directory / CERT_FILE).exists():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return _signing_key_read(str(directory))


@functools.lru_cache(maxsize=4)
def _signing_key_read(directory: str) -> SigningKey:
    path = Path(directory)
    certificate = x509.load_pem_x509_certificate((path / CERT_FILE).read_bytes())
    return SigningKey(private_pem=(path / KEY_FILE).read_bytes(), certificate_path=path / CERT_FILE,
                      kid=libtrust_key_id(certificate.public_key()))
