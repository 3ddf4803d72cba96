"""`python -m entrypoints.keys`: make, list and revoke API keys (docs/operations.md).

    create --tenant NAME --scopes tasks:read,tasks:write[,admin]   prints the new key, once
    list                                                           id, prefix, tenant, scopes, dates
    revoke ID

Runs against the configured store (DATABASE_URL, or the embedded SQLite file) with the
configured API_KEY_PEPPER, which must be the API's: a key hashed with another pepper never
matches. The store keeps only each key's prefix and keyed hash, so a lost key cannot be shown
again: revoke it and make another."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from domain.access import ApiKey, InvalidTenant, Scope, parse_scopes
from entrypoints.container import Container


def _scopes(text: str) -> frozenset[Scope]:
    try:
        return parse_scopes(text)
    except ValueError:
        known = ", ".join(scope.value for scope in Scope)
        raise argparse.ArgumentTypeError(f"scopes are a comma-separated list of {known}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m entrypoints.keys", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key; it is printed once")
    create.add_argument("--tenant", required=True, help="the tenant whose tasks the key owns")
    create.add_argument(
        "--scopes", required=True, type=_scopes, help="tasks:read,tasks:write,admin"
    )
    commands.add_parser("list", help="every key, revoked ones included (never the key itself)")
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", type=int, metavar="ID")
    return parser


def _line(key: ApiKey) -> str:
    scopes = ",".join(sorted(scope.value for scope in key.scopes))
    revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
    created = key.created_at.isoformat()
    return f"{key.id}\ttm_{key.prefix}_...\t{key.tenant}\t{scopes}\t{created}\t{revoked}"


def main(argv: Sequence[str] | None = None, container: Container | None = None) -> int:
    args = _parser().parse_args(argv)
    container = container or Container()
    if not container.settings().pepper:
        print("warning: API_KEY_PEPPER is empty; set a secret one in production", file=sys.stderr)
    if args.command == "create":
        try:
            issued = container.issue_api_key().execute(args.tenant, args.scopes)
        except InvalidTenant as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"id {issued.stored.id}, tenant {issued.stored.tenant}; shown once:", file=sys.stderr)
        print(issued.key)
        return 0
    if args.command == "list":
        print("id\tprefix\ttenant\tscopes\tcreated_at\trevoked_at")
        for key in container.list_api_keys().execute():
            print(_line(key))
        return 0
    revoked = container.revoke_api_key().execute(args.key_id)
    if revoked is None:
        print(f"error: no key has id {args.key_id}", file=sys.stderr)
        return 1
    print(_line(revoked))
    return 0


if __name__ == "__main__":
    sys.exit(main())
