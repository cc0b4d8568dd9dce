"""The served model: loading it for CPU inference, its card for GET
/models, and the route that answers it."""

import json
import os
from pathlib import Path

from starlette.responses import JSONResponse

from kvae import catalog
from serving.guard import error_body


def load_model(spec, stage2=None):
    """A float32 `kvae.TwoStageVAE` for CPU serving: whatever `kvae.load`
    reads (a zoo name, a preset folder, an hf:// handle, a stage-1 `.keras`
    file), with an optional stage-2 `.keras` file for the last."""
    import kvae

    model = kvae.load(spec, compile=False)
    if isinstance(model, kvae.TwoStageVAE):
        if stage2:
            raise ValueError("stage2= applies to a stage-1 .keras file, not to " + spec)
        return model.to_float32()
    stages = [model] + ([kvae.load(stage2, compile=False)] if stage2 else [])
    return kvae.TwoStageVAE(*stages, name=Path(spec).name).to_float32()


def model_card(spec, stage2=None):
    """What GET /models answers: the model's card (a zoo model's from the
    manifest, with its metrics.json when the zoo folder has it; a preset's
    or a Hub model's from its config.json) or, for a `.keras` file, what is
    known about it."""
    from kvae import hub, presets

    if hub.is_handle(spec):
        folder, provenance = hub.download(spec)  # cached: no request for a pinned commit
        return {**presets.read(folder).get("card", {}), "provenance": provenance}
    if Path(spec).is_dir():
        return presets.read(spec).get("card") or {"name": Path(spec).name}
    if spec.endswith(".keras") or os.sep in spec:
        return {
            "name": Path(spec).name,
            "path": spec,
            "stage2": stage2,
            "source": "a .keras file given to the service",
        }
    card = dict(catalog.card(spec))
    where, location = catalog.locate(spec)
    if where == "folder" and (location / "metrics.json").is_file():
        card["metrics_json"] = json.loads((location / "metrics.json").read_text())
    return card


class ModelsRoute:
    """ASGI middleware that answers GET /models with `card()` (BentoML's
    API routes are POST, and a mounted app would redirect /models to
    /models/). The card is read once, on the first request."""

    def __init__(self, app, card):
        self.app, self.card, self.cached = app, card, None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/") != "/models":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "GET":
            response = JSONResponse(error_body("/models answers GET", None), status_code=405)
        else:
            try:
                if self.cached is None:
                    self.cached = self.card()
                response = JSONResponse(self.cached)
            except Exception as error:  # noqa: BLE001 (a bad card must not stop the server)
                response = JSONResponse(error_body(f"model: {error}", "model"), status_code=500)
        await response(scope, receive, send)
