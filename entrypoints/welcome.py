"""`python -m entrypoints.welcome`: what `make run` prints once before it starts the processes.

Where to point a browser or curl (the API, its Swagger UI) and where the data lives: the data
directory on the embedded defaults, the store and broker (without passwords) when configured.
It reads the settings the processes will read and starts nothing."""

from __future__ import annotations

from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.engine import make_url

from entrypoints.api import API_PREFIX
from entrypoints.settings import Settings

# Addresses that mean "every interface": a browser reaches them as localhost.
_ANY_ADDRESS = {"0.0.0.0", "::", ""}  # nosec B104: compared with, never bound


def summary(settings: Settings) -> str:
    """The lines `make run` prints, joined by newlines (no trailing newline)."""
    host = "localhost" if settings.host in _ANY_ADDRESS else settings.host
    base = f"http://{host}:{settings.port}"
    data_dir = settings.data_dir.resolve()
    if settings.database_url:
        store = make_url(settings.database_url).render_as_string(hide_password=True)
    else:
        store = f"SQLite, {data_dir / 'taskman.db'}"
    if settings.broker_url:
        broker = str(maybe_sanitize_url(settings.broker_url))
    else:
        broker = f"embedded (kombu's filesystem transport), {data_dir / 'broker'}"
    lines = [
        f"taskman API   {base}{API_PREFIX}",
        f"Swagger UI    {base}/docs",
        f"task store    {store}",
        f"broker        {broker}",
    ]
    if not (settings.database_url and settings.broker_url):
        lines.append(f"data dir      {data_dir}")
    lines.append("Ctrl-C stops every process.")
    return "\n".join(lines)


def main() -> None:
    print(summary(Settings()), flush=True)


if __name__ == "__main__":
    main()
