"""Routes with a JSON body refuse any other body, naming the Content-Type header.

FastAPI parses a body as JSON only when its Content-Type says so; any other body (no header, a
form, text/plain) reaches validation as raw bytes and fails with a 422 about the body's shape,
which hides the cause. This dependency answers first: 415 Unsupported Media Type (RFC 9110,
section 15.5.16), with `Accept` (and on POST `Accept-Post`) naming the one media type taken."""

from fastapi import Request
from starlette.exceptions import HTTPException

JSON_MEDIA_TYPE = "application/json"


def is_json(content_type: str) -> bool:
    """`application/json` or a `+json` type such as `application/merge-patch+json`, whatever
    the parameters (`; charset=utf-8`): the types FastAPI parses as JSON."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == JSON_MEDIA_TYPE or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def require_json_body(request: Request) -> None:
    """A route dependency; raises HTTPException(415) if the request has a body and its
    Content-Type is not JSON. No body at all is left to validation (422, body: field required):
    there is no content to have a type. async: a plain function would cost a hop to the
    threadpool per request."""
    content_type = request.headers.get("content-type")
    if content_type is not None and is_json(content_type):
        return
    if not await request.body():  # already read by FastAPI: this is its cached copy
        return
    sent = f"this request's is {content_type!r}" if content_type else "this request has none"
    headers = {"Accept": JSON_MEDIA_TYPE}
    if request.method == "POST":
        headers["Accept-Post"] = JSON_MEDIA_TYPE
    raise HTTPException(
        415,
        f"the Content-Type header must be {JSON_MEDIA_TYPE} (the body is JSON); {sent}",
        headers=headers,
    )
