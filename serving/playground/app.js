// kvae playground: every picture comes from the service's own API, called
// with relative URLs (the page lives at <server>/playground/), so the page
// works behind any prefix and never talks to another origin.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "kvae-token";
const MAX_IMAGES = 256; // the API's limit on images per request
const state = { card: {}, stages: [1], vectors: false, latents: [], inactive: new Set(), latentDim: null };

// -- the API ----------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body.error || `HTTP ${status}`);
    this.status = status;
    this.field = body.field || null;
  }
}

function endpoint(route) {
  return new URL(`../${route}`, window.location.href);
}

async function call(route, options = {}) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (options.json) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.form) {
    body = options.form;
  }
  const response = await fetch(endpoint(route), { method: body ? "POST" : "GET", headers, body });
  if (response.status === 401) showTokenBox();
  if (!response.ok) {
    let payload;
    try {
      payload = await response.json();
    } catch {
      payload = { error: `HTTP ${response.status}` };
    }
    throw new ApiError(response.status, payload);
  }
  return response;
}

async function callJson(route, json) {
  return (await call(route, { json })).json();
}

function curlOf(route, json) {
  const url = endpoint(route).href;
  const body = JSON.stringify(json).replaceAll("'", "'\\''");
  const auth = sessionStorage.getItem(TOKEN_KEY) ? ` -H 'Authorization: Bearer $KVAE_API_TOKEN'` : "";
  return `curl${auth} -H 'Content-Type: application/json' -d '${body}' ${url}`;
}

// -- status, errors, the token ----------------------------------------------------------

let running = 0;
async function busy(section, label, work) {
  running += 1;
  $(section).setAttribute("aria-busy", "true");
  $("status").textContent = `${label}…`;
  try {
    return await work();
  } finally {
    running -= 1;
    $(section).removeAttribute("aria-busy");
    if (running === 0) $("status").textContent = "";
  }
}

function clearErrors(section) {
  for (const element of $(section).querySelectorAll(".error")) element.textContent = "";
}

function showError(section, error) {
  // The API's own message, next to the field it names when the panel has it.
  const message = error instanceof ApiError ? error.message : `The request failed: ${error.message}`;
  const target = (error.field && $(section).querySelector(`#${CSS.escape(error.field)}-error`)) || $(`${section}-error`);
  if (target) target.textContent = message;
  if (error.status === 401) $("token-error").textContent = message;
}

function showTokenBox() {
  $("token-box").hidden = false;
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token-error").textContent = "";
  $("token-box").hidden = true;
  start();
});

// -- pictures -----------------------------------------------------------------------------

function picture(base64, label, className = "") {
  const image = document.createElement("img");
  image.src = `data:image/png;base64,${base64}`;
  image.alt = label;
  image.className = `tile ${className}`.trim();
  image.width = 64;
  image.height = 64;
  return image;
}

function scatter(points, label) {
  // Inline SVG through the HTML parser (which gives it the SVG namespace).
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const scale = 180 / Math.max(x1 - x0, y1 - y0, 1e-6);
  const dots = points
    .map(([x, y]) => `<circle cx="${(10 + (x - x0) * scale).toFixed(2)}" cy="${(190 - (y - y0) * scale).toFixed(2)}" r="2"></circle>`)
    .join("");
  const holder = document.createElement("div");
  holder.innerHTML = `<svg class="scatter" viewBox="0 0 200 200" role="img">${dots}</svg>`;
  holder.firstChild.setAttribute("aria-label", label);
  return holder.firstChild;
}

function number(value, digits = 3) {
  return typeof value === "number" ? value.toPrecision(digits) : "–";
}

// -- the model --------------------------------------------------------------------------

async function loadModel() {
  const card = await (await call("models")).json();
  state.card = card;
  const metrics = card.metrics || {};
  const full = card.metrics_json || {};
  state.latents = full.latents || [];
  state.inactive = new Set(state.latents.filter((l) => l.inactive).map((l) => l.index));
  state.stages = card.stages === 2 ? [1, 2] : [1];
  $("model-line").textContent = `${card.name || "a model"}${card.description ? ` — ${card.description}` : ""}`;
  const facts = [
    ["dataset", card.dataset],
    ["stages", card.stages],
    ["MSE (test)", number(metrics.mse, 4)],
    ["ELBO, nats", number(metrics.elbo_nats, 5)],
    ["bits/dim", number(metrics.bits_per_dim, 3)],
    ["variance law", number(metrics.variance_law, 3)],
    ["latents active / inactive", metrics.active_latents != null ? `${metrics.active_latents} / ${metrics.inactive_latents}` : "–"],
  ];
  if (metrics.fd_fmnist && metrics.fd_fmnist.rec != null) {
    const fd = metrics.fd_fmnist;
    facts.push(["FD-fmnist rec / gen1 / gen2", [fd.rec, fd.gen1, fd.gen2].map((v) => number(v, 4)).join(" / ")]);
  }
  $("model-facts").replaceChildren(
    ...facts.filter(([, value]) => value != null).flatMap(([key, value]) => {
      const term = document.createElement("dt");
      term.textContent = key;
      const detail = document.createElement("dd");
      detail.textContent = value;
      return [term, detail];
    }),
  );
  const protocol = full.protocol || {};
  $("model-protocol").textContent = card.evaluation
    ? `Measured by \`${card.evaluation}\`${protocol.examples ? ` on ${protocol.examples}` : ""}.`
    : "";
  const rows = state.latents.map((latent) => {
    const row = document.createElement("tr");
    row.dataset.latent = latent.index;
    row.className = latent.inactive ? "inactive" : "active";
    for (const text of [
      `z${latent.index}`,
      number(latent.var_mu),
      number(latent.mean_sigma2),
      number(latent.reconstruction_gain, 2),
      latent.inactive ? "inactive" : "active",
    ]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    return row;
  });
  $("latents").tBodies[0].replaceChildren(...rows);
  $("latent-summary").textContent = state.latents.length
    ? `${state.latents.length - state.inactive.size} active, ${state.inactive.size} inactive`
    : "not in this model's card";
}

// -- generation -------------------------------------------------------------------------

function seedFromUrl() {
  const seed = new URLSearchParams(window.location.search).get("seed");
  return seed !== null && /^\d+$/.test(seed) ? seed : null;
}

function generationRequest(stage) {
  return {
    n: Number($("n").value),
    seed: Number($("seed").value),
    stage,
    temperature: Number($("temperature").value),
    format: "json",
  };
}

async function generate() {
  clearErrors("generate");
  const mode = $("mode").value;
  const requests = state.stages.map(generationRequest);
  const url = new URL(window.location.href);
  url.searchParams.set("seed", $("seed").value);
  window.history.replaceState(null, "", url);
  $("generate-curl").textContent = requests.map((r) => curlOf(`${mode}-generate`, r)).join("\n");
  await busy("generate", "Generating", async () => {
    try {
      const answers = await Promise.all(requests.map((r) => callJson(`${mode}-generate`, r)));
      const figures = answers.map((answer, i) => {
        const stage = requests[i].stage;
        const figure = document.createElement("figure");
        figure.className = "stage";
        figure.dataset.stage = stage;
        const caption = document.createElement("figcaption");
        caption.textContent =
          stage === 1
            ? "Stage 1: z from N(0, T²I), decoded"
            : "Stage 2: u from N(0, T²I), mapped to z by stage 2, decoded";
        const grid = document.createElement("div");
        grid.className = "grid";
        if (answer.samples) {
          state.vectors = true;
          grid.append(scatter(answer.samples, `stage ${stage} samples`));
        } else {
          grid.append(...answer.images.map((b64, k) => picture(b64, `stage ${stage}, image ${k + 1}`)));
        }
        state.latentDim = (answer.z && answer.z[0].length) || state.latentDim;
        figure.append(caption, grid);
        return figure;
      });
      $("generations").replaceChildren(...figures);
    } catch (error) {
      showError("generate", error);
    }
  });
}

$("generate-form").addEventListener("submit", (event) => {
  event.preventDefault();
  generate();
});

$("new-seed").addEventListener("click", () => {
  $("seed").value = String(Math.floor(Math.random() * 2 ** 31));
  generate();
});

// -- reconstruction ------------------------------------------------------------------

function dataUrlOf(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function reconstruct(file) {
  clearErrors("reconstruct");
  const form = (extra = {}) => {
    const data = new FormData();
    data.append("image", file, file.name || "image.png");
    for (const [key, value] of Object.entries(extra)) data.append(key, value);
    return data;
  };
  const endpointUrl = endpoint("reconstruct").href;
  $("reconstruct-curl").textContent =
    `curl -F image=@${file.name || "image.png"} ${endpointUrl} -o reconstruction.png\n` +
    `curl -F image=@${file.name || "image.png"} -F sample=true -F seed=1 ${endpointUrl} -o posterior-sample-1.png\n` +
    `curl -F image=@${file.name || "image.png"} ${endpoint("encode").href}`;
  await busy("reconstruct", "Reconstructing", async () => {
    try {
      const [original, fromMu, ...samples] = await Promise.all([
        dataUrlOf(file),
        call("reconstruct", { form: form() }).then((r) => r.blob()).then(dataUrlOf),
        ...[1, 2, 3].map((seed) =>
          call("reconstruct", { form: form({ sample: "true", seed: String(seed) }) })
            .then((r) => r.blob())
            .then(dataUrlOf),
        ),
      ]);
      const posterior = await (await call("encode", { form: form() })).json();
      const tiles = [
        [original, "uploaded", "original"],
        [fromMu, "from mu", "from-mu"],
        ...samples.map((url, k) => [url, `z drawn, seed ${k + 1}`, "posterior-sample"]),
      ].map(([url, label, kind]) => {
        const figure = document.createElement("figure");
        const image = document.createElement("img");
        image.src = url;
        image.alt = label;
        image.width = 96;
        image.height = 96;
        image.className = `tile ${kind}`;
        const caption = document.createElement("figcaption");
        caption.textContent = label;
        figure.append(image, caption);
        return figure;
      });
      $("reconstruction").replaceChildren(...tiles);
      const rows = posterior.mu.map((mu, index) => {
        const row = document.createElement("tr");
        row.dataset.latent = index;
        const inactive = state.inactive.has(index);
        row.className = inactive ? "inactive" : "active";
        for (const text of [`z${index}`, number(mu, 4), number(Math.exp(posterior.log_sigma[index]), 4), inactive ? "inactive" : "active"]) {
          const cell = document.createElement("td");
          cell.textContent = text;
          row.append(cell);
        }
        return row;
      });
      $("posterior").tBodies[0].replaceChildren(...rows);
      $("posterior").hidden = false;
    } catch (error) {
      showError("reconstruct", error);
    }
  });
}

$("try-generated").addEventListener("click", async () => {
  const first = document.querySelector("#generations figure:last-child img");
  if (!first) return;
  const bytes = Uint8Array.from(atob(first.src.split(",")[1]), (c) => c.charCodeAt(0));
  reconstruct(new File([bytes], "generated.png", { type: "image/png" }));
});

$("image").addEventListener("change", () => {
  if ($("image").files.length) reconstruct($("image").files[0]);
});
for (const kind of ["dragenter", "dragover"]) {
  $("drop").addEventListener(kind, (event) => {
    event.preventDefault();
    $("drop").classList.add("over");
  });
}
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (event) => {
  event.preventDefault();
  $("drop").classList.remove("over");
  if (event.dataTransfer.files.length) reconstruct(event.dataTransfer.files[0]);
});

// -- interpolation ----------------------------------------------------------------------

async function latentsOfSeed(seed, stage) {
  // The latents that /mean-generate decodes for this seed: u for stage 2, z for stage 1.
  const answer = await callJson("mean-generate", { n: 1, seed, stage, format: "json" });
  return { own: (stage === 2 ? answer.u : answer.z)[0], z: answer.z[0] };
}

async function interpolate() {
  clearErrors("interpolate");
  const stage = state.stages[state.stages.length - 1];
  await busy("interpolate", "Interpolating", async () => {
    try {
      const [a, b] = await Promise.all(
        ["seed-a", "seed-b"].map((id) => latentsOfSeed(Number($(id).value), stage)),
      );
      const request = {
        start: a.own,
        end: b.own,
        steps: Number($("steps").value),
        path: $("path").value,
        stage,
        format: "json",
      };
      $("interpolate-curl").textContent = curlOf("interpolate", request);
      const answer = await callJson("interpolate", request);
      const frames = answer.samples
        ? [scatter(answer.samples, "interpolated points")]
        : answer.images.map((b64, k) => picture(b64, `frame ${k + 1} of ${answer.images.length}`, "frame"));
      $("interpolation").replaceChildren(...frames);
    } catch (error) {
      showError("interpolate", error);
    }
  });
}

$("interpolate-form").addEventListener("submit", (event) => {
  event.preventDefault();
  interpolate();
});

// -- traversal ------------------------------------------------------------------------

function latentOrder(dim) {
  // Active latents by reconstruction gain (the card's), then by index; the inactive apart.
  const known = new Map(state.latents.map((l) => [l.index, l]));
  const indices = Array.from({ length: dim }, (_, i) => i);
  const gain = (i) => (known.get(i) ? known.get(i).reconstruction_gain || 0 : 0);
  const active = indices.filter((i) => !state.inactive.has(i)).sort((i, j) => gain(j) - gain(i) || i - j);
  return { active, inactive: indices.filter((i) => state.inactive.has(i)) };
}

async function traverseRows(z, indices, steps, span) {
  const perRequest = Math.max(1, Math.floor(MAX_IMAGES / steps));
  const rows = [];
  const requests = [];
  for (let start = 0; start < indices.length; start += perRequest) {
    requests.push({ z, indices: indices.slice(start, start + perRequest), steps, span, stage: 1, format: "json" });
  }
  const answers = await Promise.all(requests.map((r) => callJson("traverse", r)));
  answers.forEach((answer, k) => {
    requests[k].indices.forEach((latent, row) => {
      const images = answer.images.slice(row * steps, (row + 1) * steps);
      const line = document.createElement("div");
      line.className = `trow ${state.inactive.has(latent) ? "inactive" : "active"}`;
      line.dataset.latent = latent;
      const label = document.createElement("span");
      label.className = "tlabel";
      label.textContent = `z${latent}`;
      line.append(label, ...images.map((b64, s) => picture(b64, `z${latent}, step ${s + 1}`, "small")));
      rows.push(line);
    });
  });
  return { rows, curl: requests.length ? curlOf("traverse", requests[0]) : "" };
}

async function traverse() {
  clearErrors("traverse");
  if (state.vectors) {
    $("traversal").textContent = "Traversals are pictures: this model generates points.";
    return;
  }
  const stage = state.stages[state.stages.length - 1];
  await busy("traverse", "Traversing", async () => {
    try {
      const { z } = await latentsOfSeed(Number($("traverse-seed").value), stage);
      const steps = Number($("traverse-steps").value);
      const span = Number($("span").value);
      const order = latentOrder(z.length);
      const { rows, curl } = await traverseRows(z, order.active, steps, span);
      $("traverse-curl").textContent = curl;
      const parts = [...rows];
      if (order.inactive.length) {
        const box = document.createElement("details");
        box.className = "inactive-rows";
        box.dataset.inactive = order.inactive.join(",");
        const summary = document.createElement("summary");
        summary.textContent = `${order.inactive.length} inactive latents (${order.inactive.map((i) => `z${i}`).join(", ")}): show that they change nothing`;
        box.append(summary);
        box.addEventListener("toggle", async () => {
          if (!box.open || box.dataset.loaded) return;
          box.dataset.loaded = "1";
          try {
            const inactive = await traverseRows(z, order.inactive, steps, span);
            box.append(...inactive.rows);
          } catch (error) {
            showError("traverse", error);
          }
        });
        parts.push(box);
      }
      $("traversal").replaceChildren(...parts);
    } catch (error) {
      showError("traverse", error);
    }
  });
}

$("traverse-form").addEventListener("submit", (event) => {
  event.preventDefault();
  traverse();
});

// -- start ------------------------------------------------------------------------------

async function start() {
  const seed = seedFromUrl();
  if (seed !== null) {
    for (const id of ["seed", "seed-a", "traverse-seed"]) $(id).value = seed;
    $("seed-b").value = String(Number(seed) + 1);
  }
  try {
    await busy("model", "Loading the model card", loadModel);
  } catch (error) {
    $("model-line").textContent = error.message;
    if (error.status === 401) $("token-error").textContent = error.message;
    return;
  }
  await generate();
  if (state.vectors) {
    $("reconstruct").hidden = true;
    $("traverse").hidden = true;
  }
  await Promise.all([interpolate(), state.vectors ? null : traverse()]);
  document.body.dataset.ready = "true";
}

start();
