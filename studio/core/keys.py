"""`python manage.py generate_encryption_key`: a new key for STUDIO_ENCRYPTION_KEYS, made without the settings.

It makes the key the settings need, so it cannot wait for them: with DEBUG=0 and no key yet, loading the
settings fails. manage.py hands the command here before Django starts. Either the key and a newline are on
stdout and the exit status is 0, or the status is non-zero, so `KEY=$(python manage.py generate_encryption_key)`
under `set -e` stops instead of going on with an empty key.
"""

import argparse
import os
import sys

from cryptography.fernet import Fernet

COMMAND = "generate_encryption_key"


def new_key():
    return Fernet.generate_key().decode()


def main(argv):
    parser = argparse.ArgumentParser(
        prog=f"manage.py {COMMAND}",
        description="Print a new key for STUDIO_ENCRYPTION_KEYS (comma-separated: the first encrypts, all decrypt).")
    parser.parse_args(argv)  # --help, or exit status 2 on any argument
    line = f"{new_key()}\n".encode()
    try:
        # Straight to the file descriptor: a closed stdout or a broken pipe is an error here, not at exit.
        written = os.write(sys.stdout.fileno() if sys.stdout else 1, line)
    except (OSError, ValueError) as error:
        print(f"{COMMAND}: could not write the key: {error}", file=sys.stderr)
        return 1
    if written != len(line):
        print(f"{COMMAND}: could not write the whole key", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
