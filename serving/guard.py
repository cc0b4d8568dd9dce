"""What stands between a stranger's request and the service's APIs.

`Guard` is one ASGI middleware around the BentoML app. For the API routes it
checks, before BentoML parses anything:

- the token, when one is configured (401; /livez, /readyz and GET of the
  playground's static files stay open: a browser cannot send a bearer
  header when it loads a page);
- the number of API requests in progress in this worker (429 beyond
  `max_concurrency`);
- the body size (413), from Content-Length and while reading;
- the content type: JSON routes take `application/json`, upload routes
  `multipart/form-data` with a boundary (400);
- the body's shape: a JSON object whose names are the API's parameters and
  whose numbers are finite; a multipart form whose `image` is one file part
  and whose other parts are the API's text parameters (400). A text part
  named `image` is refused: BentoML would read it as a URL to fetch.

Then it rewrites every error answer, BentoML's and the service's, into one
body, `{"error": "<field>: <rule>", "field": "<field>" | null}`, logs one
line per client error (no traceback), and makes the OpenAPI document
(/docs.json) say what the routes really return (`openapi_patch`).
"""

import hmac
import json
import logging
import math

from starlette.requests import Request
from starlette.responses import JSONResponse

logger = logging.getLogger("kvae.serving")

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
"""Answered without a token (orchestrators' probes)."""
OPEN_STATIC_PREFIX = "/playground"
"""GET and HEAD below it are answered without a token: static files only
(the page's API calls carry the token)."""


class Rejection(Exception):
    """A client error found by the guard: status, field and rule."""

    def __init__(self, status, field, rule):
        super().__init__(f"{field}: {rule}" if field else rule)
        self.status, self.field, self.rule = status, field, rule


def error_body(message, field):
    return {"error": message, "field": field}


def split_field(message):
    """('field', message) from a service error 'field: rule'."""
    head, _, rest = message.partition(":")
    if rest and head and " " not in head.strip():
        return head.strip(), message
    return None, message


def normalized_error(status, payload, limits):
    """The uniform error body for an error answer of BentoML or the service
    (`payload`: its parsed JSON, or None)."""
    if status == 429:
        return error_body(
            f"overloaded: more than {limits['max_concurrency']} requests are in progress; "
            "retry later",
            None,
        )
    if status == 503:
        return error_body(
            "overloaded: the decoder could not take the request within its latency bound "
            f"({limits['batch_latency_ms']} ms); retry later",
            None,
        )
    if status >= 500:
        return error_body("internal error: the server log has the details", None)
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        payload = payload[0]  # BentoML wraps a service error in a list
    if isinstance(payload, dict) and payload.get("detail") and isinstance(payload["detail"], list):
        first = payload["detail"][0]  # a pydantic validation error
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        field = location[0] if location else "body"
        rule = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        if len(location) > 1:  # an element: z[1][0]
            rule += " (at " + field + "".join(f"[{part}]" for part in location[1:]) + ")"
        return error_body(f"{field}: {rule}", field)
    message = str(payload.get("error")) if isinstance(payload, dict) else str(payload)
    field, message = split_field(message)
    return error_body(message, field)


def unknown_field(name, fields):
    """The rejection of a parameter the endpoint does not take."""
    return Rejection(400, name, f"unknown field; this endpoint takes {', '.join(sorted(fields))}")


def check_json(body, fields):
    """A JSON body: an object (or nothing) whose names are in `fields`,
    with finite numbers only. Raises Rejection."""
    if not body.strip():
        return
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise Rejection(400, "body", f"not valid JSON ({error})") from error
    if not isinstance(value, dict):
        raise Rejection(400, "body", "a JSON object of the parameters is expected")
    for name in value:
        if name not in fields:
            raise unknown_field(name, fields)

    def finite(item):
        if isinstance(item, float):
            return math.isfinite(item)
        if isinstance(item, list):
            return all(finite(element) for element in item)
        return True

    for name, item in value.items():
        if not finite(item):
            raise Rejection(400, name, "NaN and infinite numbers are not accepted")


async def check_form(scope, body, fields, file_field):
    """A multipart form: `file_field` is one file part, every other part a
    text part named in `fields`. Raises Rejection."""
    from starlette.datastructures import UploadFile

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request(scope, replay)
    try:
        form = await request.form(max_files=2, max_fields=len(fields) + 2)
    except Exception as error:  # noqa: BLE001 - starlette's parser raises several kinds
        detail = getattr(error, "detail", None) or str(error) or type(error).__name__
        raise Rejection(400, file_field, f"the multipart body cannot be read ({detail})") from error
    try:
        for name in form:
            if name not in fields:
                raise unknown_field(name, fields)
        for name in form:
            if name != file_field and len(form.getlist(name)) > 1:
                raise Rejection(400, name, "send this field once")
        parts = form.getlist(file_field)
        if len(parts) != 1:
            raise Rejection(400, file_field, "send exactly one image file part")
        if not isinstance(parts[0], UploadFile):
            raise Rejection(400, file_field, "must be a file part (a filename), not text")
        for name in form:
            if name != file_field and any(isinstance(v, UploadFile) for v in form.getlist(name)):
                raise Rejection(400, name, "must be a text part, not a file")
    finally:
        await form.close()


class Guard:
    """The ASGI middleware (module docstring). `routes` maps an API route to
    ("json" | "form", the API's parameter names); `limits` holds
    max_json_bytes, max_form_bytes, max_concurrency, batch_latency_ms;
    `token` is the required bearer token or None; `openapi` patches the
    OpenAPI document (a callable taking and returning the dict)."""

    def __init__(self, app, routes, limits, token=None, openapi=None):
        self.app, self.routes, self.limits = app, routes, limits
        self.token, self.openapi = token, openapi
        self.in_progress = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.routes.get(scope["path"]) if scope["method"] == "POST" else None
        if route is None:
            await self._pass(scope, receive, send, None)
            return
        if self.in_progress >= self.limits["max_concurrency"]:
            message = normalized_error(429, None, self.limits)["error"]
            await self._reject(scope, receive, send, Rejection(429, None, message))
            return
        self.in_progress += 1
        try:
            await self._pass(scope, receive, send, route)
        finally:
            self.in_progress -= 1

    async def _pass(self, scope, receive, send, route):
        try:
            self._authorize(scope)
            if route is not None:
                receive = await self._checked_body(scope, receive, *route)
        except Rejection as rejection:
            await self._reject(scope, receive, send, rejection)
            return
        if scope["path"] == "/docs.json" and self.openapi is not None:
            await self.app(scope, receive, self._rewriting(send, scope, self._patch_openapi))
        elif route is not None:
            await self.app(scope, receive, self._rewriting(send, scope, self._normalize))
        else:
            await self.app(scope, receive, send)

    async def _reject(self, scope, receive, send, rejection):
        """Answer a client error found here, with one log line."""
        logger.warning(
            "client error %s on %s [%s]: %s",
            rejection.status,
            scope["path"],
            scope["method"],
            rejection,
        )
        response = JSONResponse(
            error_body(str(rejection), rejection.field), status_code=rejection.status
        )
        if rejection.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        elif rejection.status == 429:
            response.headers["Retry-After"] = "1"
        await response(scope, receive, send)

    def _authorize(self, scope):
        if self.token is None or scope["path"] in OPEN_PATHS:
            return
        path = scope["path"]
        static = path == OPEN_STATIC_PREFIX or path.startswith(OPEN_STATIC_PREFIX + "/")
        if static and scope["method"] in ("GET", "HEAD"):
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credential.strip().encode(), self.token.encode()
        ):
            raise Rejection(401, "authorization", "send the header `Authorization: Bearer <token>`")

    async def _checked_body(self, scope, receive, kind, fields):
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = self.limits["max_form_bytes" if kind == "form" else "max_json_bytes"]
        field = fields[0] if kind == "form" else "body"  # what a 413 names
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise Rejection(413, field, f"{int(declared)} bytes is over the limit of {limit}")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Rejection(413, field, f"over the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if kind == "json":
            if body.strip() and not content_type.startswith("application/json"):
                raise Rejection(
                    400, "content-type", f"send application/json, not {content_type or 'nothing'}"
                )
            check_json(body, fields)
        else:
            file_field = fields[0]
            if not content_type.startswith("multipart/form-data"):
                raise Rejection(
                    400,
                    file_field,
                    f"send the image as a multipart/form-data file part, not "
                    f"{content_type or 'an empty body'}",
                )
            if "boundary=" not in content_type:
                raise Rejection(400, file_field, "multipart/form-data needs a boundary")
            await check_form(scope, body, set(fields), file_field)
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    def _rewriting(self, send, scope, rewrite):
        """A `send` that buffers an error answer (or the OpenAPI document)
        and passes it through `rewrite(status, body bytes) -> dict | None`."""
        state = {"start": None, "chunks": []}

        async def wrapped(message):
            if message["type"] == "http.response.start":
                status = message["status"]
                if status >= 400 or scope["path"] == "/docs.json":
                    state["start"] = message
                    return
            elif state["start"] is not None and message["type"] == "http.response.body":
                state["chunks"].append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                status = state["start"]["status"]
                replaced = rewrite(status, b"".join(state["chunks"]))
                if replaced is None:
                    body = b"".join(state["chunks"])
                    headers = state["start"]["headers"]
                else:
                    body = json.dumps(replaced).encode()
                    headers = [
                        (key, value)
                        for key, value in state["start"]["headers"]
                        if key.lower() not in (b"content-length", b"content-type")
                    ] + [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ]
                await send({**state["start"], "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send(message)

        return wrapped

    def _normalize(self, status, body):
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = body.decode("utf-8", "replace")
        return normalized_error(status, payload, self.limits)

    def _patch_openapi(self, status, body):
        if status != 200:
            return None
        try:
            return self.openapi(json.loads(body))
        except Exception:  # noqa: BLE001 - an unpatched document beats none
            logger.exception("could not patch the OpenAPI document")
            return None


class QuietClientErrors(logging.Filter):
    """On BentoML's server logger: a client error (validation, or a
    BentoML error under 500) becomes one line without a traceback; server
    faults keep theirs."""

    def filter(self, record):
        if not record.exc_info or record.exc_info[1] is None:
            return True
        error = record.exc_info[1]
        status = getattr(getattr(error, "error_code", None), "value", None)
        if type(error).__name__ == "ValidationError":
            status = 400
        if status is None or status >= 500:
            return True
        path, method = (tuple(record.args or ()) + ("?", "?"))[:2]
        record.msg = "client error %s on %s [%s]: %s"
        record.args = (status, path, method, " ".join(str(error).split()))
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True
