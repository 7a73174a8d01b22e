"""Generated secrets for a laptop: created once in the data directory, never in git."""

import json
import os
import secrets

from cryptography.fernet import Fernet

FILE_NAME = "dev-secrets.json"


def load_dev_secrets(data_dir):
    """Return the development secrets, creating them on first use."""
    path = data_dir / FILE_NAME
    if path.exists():
        stored = json.loads(path.read_text())
    else:
        stored = {}
    wanted = {
        "secret_key": lambda: secrets.token_urlsafe(50),
        "encryption_key": lambda: Fernet.generate_key().decode(),
        "admin_password": lambda: secrets.token_urlsafe(12),
    }
    missing = {name: make() for name, make in wanted.items() if name not in stored}
    if missing:
        stored.update(missing)
        data_dir.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2)
        os.replace(temporary, path)
    return stored
