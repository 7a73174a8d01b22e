#!/usr/bin/env python
import os
import sys


def main():
    if sys.argv[1:2] == ["generate_encryption_key"]:
        # It makes a key the settings need, so it runs before them (see studio/core/keys.py).
        from studio.core.keys import main as generate_encryption_key

        sys.exit(generate_encryption_key(sys.argv[2:]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
