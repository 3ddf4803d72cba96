"""compose's one-shot `secrets` service: the passwords of PostgreSQL, Redis and Grafana, in files.

    python generate_secrets.py DIRECTORY

For each password: the value of its environment variable when set and not empty (`.env`'s
POSTGRES_PASSWORD, REDIS_PASSWORD); else the one already in DIRECTORY, kept across restarts;
else a new random one (secrets.token_urlsafe, 256 bits). Writes DIRECTORY/postgres_password and
DIRECTORY/redis_password, DIRECTORY/grafana/admin_password (.env's GRAFANA_ADMIN_PASSWORD; the
bare password, no newline), and DIRECTORY/redis.conf
(`requirepass`, for redis-server to read: a password on its command line would show in `ps`).
Prints where each password came from, never the password. Exits 2 on a bad argument.

The standard library only: it runs on any Python 3.11, in the image or outside it."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

PASSWORDS = {
    "postgres_password": "POSTGRES_PASSWORD",
    "redis_password": "REDIS_PASSWORD",
    # In a folder of its own: Grafana's container mounts only that folder (compose's subpath).
    "grafana/admin_password": "GRAFANA_ADMIN_PASSWORD",
}
RANDOM_BYTES = 32
# Read by three images that run as three different users (PostgreSQL's, Redis's, taskman's);
# the volume holding them is mounted, read-only, only into taskman's own services.
FILE_MODE = 0o444


def generate(directory: Path, environ: dict[str, str]) -> dict[str, str]:
    """Write the password files and redis.conf into `directory` (created if missing); return
    each password's origin: "from <VARIABLE>", "kept" or "generated"."""
    directory.mkdir(parents=True, exist_ok=True)
    origins: dict[str, str] = {}
    passwords: dict[str, str] = {}
    for name, variable in PASSWORDS.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        given = environ.get(variable, "")
        if given:
            password, origins[name] = given, f"from {variable}"
        elif path.is_file() and path.read_text(encoding="utf-8"):
            password, origins[name] = path.read_text(encoding="utf-8"), "kept"
        else:
            password, origins[name] = secrets.token_urlsafe(RANDOM_BYTES), "generated"
        _write(path, password)
        passwords[name] = password
    _write(directory / "redis.conf", f"requirepass {redis_quoted(passwords['redis_password'])}\n")
    return origins


def redis_quoted(value: str) -> str:
    """`value` as a double-quoted redis.conf argument. redis-server splits its configuration
    with sdssplitargs, which reads bytes: a quote and a backslash are escaped, printable ASCII is
    kept, every other byte (UTF-8 included) is written as \\xHH."""
    escaped = "".join(
        f"\\{chr(byte)}"
        if chr(byte) in '"\\'
        else chr(byte)
        if 0x20 <= byte < 0x7F
        else f"\\x{byte:02x}"
        for byte in value.encode()
    )
    return f'"{escaped}"'


def _write(path: Path, text: str) -> None:
    """Replace `path` atomically: a service starting meanwhile reads the old file or the new
    one, never half of one."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    for name, origin in generate(Path(argv[1]), dict(os.environ)).items():
        print(f"{name}: {origin}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
