"""Encryption at rest for provider API keys (MultiFernet: the first key encrypts, all keys decrypt)."""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class KeyDecryptionError(Exception):
    """A stored value that none of the configured keys can decrypt."""


def _multifernet():
    keys = settings.STUDIO_ENCRYPTION_KEYS
    if not keys:
        raise ImproperlyConfigured("STUDIO_ENCRYPTION_KEYS is empty: no key to encrypt or decrypt API keys with.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as error:
        raise ImproperlyConfigured(
            "STUDIO_ENCRYPTION_KEYS must hold comma-separated Fernet keys "
            "(32 url-safe base64-encoded bytes each; make one with `python manage.py generate_encryption_key`)."
        ) from error


def encrypt(plaintext):
    return _multifernet().encrypt(plaintext.encode()).decode()


def decrypt(token, *, what="value"):
    try:
        return _multifernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyDecryptionError(
            f"The stored {what} cannot be decrypted with any key in STUDIO_ENCRYPTION_KEYS. "
            "Was the key that encrypted it removed? Put it back (after the new one) or enter the value again."
        ) from None


def rotate(token, *, what="value"):
    """Re-encrypt a token with the first key; raises KeyDecryptionError like decrypt()."""
    try:
        return _multifernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise KeyDecryptionError(
            f"The stored {what} cannot be decrypted with any key in STUDIO_ENCRYPTION_KEYS, so it cannot be rotated."
        ) from None
