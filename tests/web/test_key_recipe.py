"""The README's production recipe, run as written: with DEBUG=0 and no keys yet, `$(python manage.py
generate_encryption_key)` must give a key the settings then load with, not an empty one that the shell
takes for success. And when no key can be given, the command says so with its exit status."""

import os
import re
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from studio.core.devsecrets import FILE_NAME as DEV_SECRETS

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = str(Path(sys.executable).parent)


def readme_recipe():
    """The README's lines that set DEBUG, SECRET_KEY and STUDIO_ENCRYPTION_KEYS, exactly as written there."""
    text = (ROOT / "README.md").read_text()
    lines = [line for line in text.splitlines()
             if re.match(r"export (DEBUG=0|SECRET_KEY=|STUDIO_ENCRYPTION_KEYS=)", line)]
    assert [line.split("=")[0] for line in lines] == ["export DEBUG", "export SECRET_KEY",
                                                     "export STUDIO_ENCRYPTION_KEYS"], lines
    # The README's placeholder for the secret key, filled in as a person would.
    return [line.replace("SECRET_KEY=...", "SECRET_KEY=" + "s3cret-" * 8) for line in lines]


def production_shell(script, tmp_path):
    """bash with the project's Python first on PATH and none of the secrets or laptop switches set."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"DEBUG", "SECRET_KEY", "STUDIO_ENCRYPTION_KEYS", "STUDIO_LOCAL_SECRETS",
                          "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(PATH=f"{VENV_BIN}:{env.get('PATH', '')}", STUDIO_DATA_DIR=str(tmp_path / "data"),
               STUDIO_SQLITE_PATH=str(tmp_path / "studio.sqlite3"))
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


LOAD_SETTINGS = """python -c '
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
django.setup()
from django.conf import settings
from studio.core.crypto import decrypt, encrypt
assert decrypt(encrypt("sk-live-123")) == "sk-live-123"
print("settings loaded with", len(settings.STUDIO_ENCRYPTION_KEYS), "key")
'"""


def test_the_readme_recipe_makes_a_key_the_production_settings_load_with(tmp_path):
    script = "\n".join(["set -e", *readme_recipe(), 'echo "key=$STUDIO_ENCRYPTION_KEYS"', LOAD_SETTINGS])
    result = production_shell(script, tmp_path)
    assert result.returncode == 0, result.stderr
    key = re.search(r"^key=(.*)$", result.stdout, re.M).group(1)
    Fernet(key)  # 32 url-safe base64-encoded bytes, or this raises
    assert "settings loaded with 1 key" in result.stdout
    assert not (tmp_path / "data" / DEV_SECRETS).exists()  # production's own key, not a laptop's generated one


def test_the_key_command_prints_one_key_and_a_newline_and_nothing_else(tmp_path):
    result = production_shell("export DEBUG=0; python manage.py generate_encryption_key", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}=\n", result.stdout)
    assert Fernet(result.stdout.strip())


def test_the_key_command_fails_loudly_when_it_cannot_give_the_key(tmp_path):
    closed = production_shell("export DEBUG=0; python manage.py generate_encryption_key >&-", tmp_path)
    assert closed.returncode != 0
    assert "could not write the key" in closed.stderr
    stray = production_shell("set -e; KEY=$(python manage.py generate_encryption_key --force); echo went on",
                             tmp_path)
    assert stray.returncode == 2 and "went on" not in stray.stdout


def test_the_key_command_is_still_listed_and_callable_through_django(tmp_path):
    from io import StringIO

    from django.core.management import call_command

    output = StringIO()
    call_command("generate_encryption_key", stdout=output)
    assert Fernet(output.getvalue().strip())
