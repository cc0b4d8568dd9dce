"""The OpenAPI document (/docs.json) as the service really behaves, for
the model it serves: BentoML writes the routes and parameter types; `patch`
adds the rules the service enforces, the model's stages and latent lengths,
each route's 200 content types and the error body of every error status."""

from serving.inputs import MAX_ABS_LATENT, MAX_IMAGES

ERROR_RESPONSES = {
    400: "a client mistake: the body names the field and the rule",
    401: "a token is configured and the request did not send it",
    413: "the body or the image is over its limit",
    429: "more than max_concurrency requests in progress; retry later",
    500: "a server fault (the server log has the traceback)",
    503: "the request waited too long for a decode; retry later",
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "'<field>: <rule>', or the reason"},
        "field": {"type": "string", "nullable": True, "description": "the field at fault"},
    },
    "required": ["error", "field"],
}
_NUMBERS = {"type": "array", "items": {"type": "number"}}
_ROWS = {"type": "array", "items": _NUMBERS}
_PNG = {"schema": {"type": "string", "format": "binary"}}
_IMAGES_JSON = {
    "schema": {
        "anyOf": [
            {
                "type": "object",
                "description": "format=json: one base64 PNG per image, and the stage-1 "
                "latents z they were decoded from (with stage 2, also its latents u)",
                "properties": {
                    "images": {"type": "array", "items": {"type": "string"}},
                    "media_type": {"type": "string", "enum": ["image/png"]},
                    "z": _ROWS,
                    "u": _ROWS,
                },
                "required": ["images", "media_type", "z"],
            },
            {
                "type": "object",
                "description": "a model of vectors (manifold2d): the numbers",
                "properties": {"samples": _ROWS, "z": _ROWS, "u": _ROWS},
                "required": ["samples", "z"],
            },
        ]
    }
}
_DECODED = {"image/png": _PNG, "application/json": _IMAGES_JSON}
SUCCESS_CONTENT = {
    "/encode": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"mu": _NUMBERS, "log_sigma": _NUMBERS, "z": _NUMBERS},
                "required": ["mu", "log_sigma"],
            }
        }
    },
    "/reconstruct": {"image/png": _PNG},
    "/mean-generate": _DECODED,
    "/sample-generate": _DECODED,
    "/interpolate": _DECODED,
    "/traverse": _DECODED,
}
"""The 200 answers of each route: a PNG for format=png (the default), JSON
for format=json."""


def model_rules(schema, model):
    """A route's request schema with the rules the service enforces: no
    unknown fields, null for an optional parameter, the model's stages and
    latent lengths."""
    schema["additionalProperties"] = False
    properties = schema.get("properties", {})
    for spec in properties.values():
        if "default" in spec and spec["default"] is None:
            spec["nullable"] = True
    if "stage" in properties:
        properties["stage"]["enum"] = list(model.stages) + [None]
    dims = {model.latent_dim_of(stage) for stage in model.stages}
    dim = dims.pop() if len(dims) == 1 else None
    for name in ("z", "start", "end"):
        spec = properties.get(name)
        if spec is None:
            continue
        row = spec["items"] if name == "z" and "items" in spec.get("items", {}) else spec
        if row is not spec:
            spec.update(minItems=1, maxItems=MAX_IMAGES)
        row["items"].update(minimum=-MAX_ABS_LATENT, maximum=MAX_ABS_LATENT)
        if dim is not None:
            row.update(minItems=dim, maxItems=dim)
    return schema


def patch(document, model):
    """The OpenAPI document with every route's real requests and answers
    for `model` (a `kvae.TwoStageVAE`)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["KvaeError"] = ERROR_SCHEMA
    errors = {
        str(status): {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KvaeError"}}},
        }
        for status, text in ERROR_RESPONSES.items()
    }
    for route, content in SUCCESS_CONTENT.items():
        post = document.get("paths", {}).get(route, {}).get("post")
        if post is None:
            continue
        post["responses"] = {"200": {"description": "OK", "content": content}, **errors}
        body = post.get("requestBody", {})
        for media in body.get("content", {}).values():
            model_rules(media.get("schema", {}), model)
        if "multipart/form-data" in body.get("content", {}):
            body["required"] = True
    return document
