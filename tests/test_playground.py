"""The browser playground (serving/playground/, issue 32): its files, the
guard's view of them, and the page itself in a real headless Chromium
(Debian's chromium-headless-shell driven by Playwright) against really
started servers (tests/real_servers.py). Every request to another host is
aborted and fails the test; no page error and no console error is allowed
but the 4xx a test provokes on purpose. The pictures the page shows are
compared, decoded, with the API's own answers."""

import base64
import io
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from real_servers import TOKEN, TOKEN_HEADERS

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "serving" / "playground"
HEADLESS_SHELL = shutil.which("chromium-headless-shell") or "/usr/bin/chromium-headless-shell"


def pixels_of(content):
    return np.asarray(Image.open(io.BytesIO(content)))


def pixels_of_data_url(url):
    assert url.startswith("data:image/png;base64,"), url[:40]
    return pixels_of(base64.b64decode(url.split(",", 1)[1]))


# -- without a browser ---------------------------------------------------------------


def test_the_page_names_no_other_origin():
    """No absolute http(s) URL and no protocol-relative one in the page's
    files: everything it loads or calls is relative to the server."""
    files = sorted(PAGE.iterdir())
    assert {path.name for path in files} == {"index.html", "app.js", "style.css"}
    for path in files:
        text = path.read_text()
        assert not re.search(r"https?://", text, re.I), path
        assert not re.search(r"""(["'(=]\s*//[\w.-])|url\(\s*//""", text), path
        assert "@import" not in text and "fonts." not in text, path


def test_static_files_are_open_while_the_apis_need_the_token(servers):
    url = servers["hub"]
    for name in ("", "index.html", "app.js", "style.css"):
        answer = httpx.get(f"{url}/playground/{name}", timeout=30)
        assert answer.status_code == 200, name
    assert "kvae playground" in httpx.get(f"{url}/playground/", timeout=30).text
    assert httpx.post(f"{url}/mean-generate", json={"n": 1}, timeout=30).status_code == 401
    assert httpx.get(f"{url}/models", timeout=30).status_code == 401
    assert httpx.post(f"{url}/playground/", content=b"x", timeout=30).status_code == 401
    assert (
        httpx.post(f"{url}/mean-generate", json={"n": 1}, headers=TOKEN_HEADERS).status_code == 200
    )


# -- in a browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium under Playwright; skipped, saying why,
    where either is missing, and a failure in CI (which installs both)."""
    missing = None
    try:
        from playwright import sync_api as playwright_api
    except ImportError:
        missing = "playwright is not installed: pip install -e '.[test]'"
    if missing is None and not Path(HEADLESS_SHELL).exists():
        missing = "no headless Chromium: apt-get install chromium-headless-shell (as root)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=HEADLESS_SHELL)
        yield browser
        browser.close()


class Visit:
    """A page of `browser` on the server at `url`: requests to any other
    host are aborted and recorded; console errors and page errors are
    recorded. `check(allowed)` asserts that nothing was recorded but console
    errors matching `allowed`."""

    def __init__(self, browser, url, viewport=None):
        self.origin = urlsplit(url).netloc
        self.url = url
        self.foreign, self.errors = [], []
        self.page = browser.new_page(viewport=viewport or {"width": 1280, "height": 900})
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )

    def _route(self, route):
        if urlsplit(route.request.url).netloc != self.origin:
            self.foreign.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    def open(self, query="", ready=True):
        self.page.goto(f"{self.url}/playground/{query}")
        if ready:
            self.page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        return self.page

    def check(self, allowed=()):
        assert not self.foreign, f"requests to other hosts: {self.foreign}"
        unexpected = [e for e in self.errors if not any(re.search(a, e) for a in allowed)]
        assert not unexpected, unexpected
        self.page.close()


def test_the_page_shows_the_apis_pictures_for_the_seed_in_its_address(browser, servers):
    """On load, before any click: the model's name and latents, and for the
    seed in the URL the same pixels as POST /mean-generate for stage 1 and
    stage 2; the interpolation's end frames equal the generations of its two
    seeds; the traversal has one row per active latent, in the card's
    terms, with the inactive ones collapsed under one line."""
    url = servers["batched"]
    visit = Visit(browser, url)
    page = visit.open("?seed=11")
    card = httpx.get(f"{url}/models", timeout=30).json()
    assert card["name"] in page.inner_text("#model-line")
    for stage in (1, 2):
        shown = page.locator(f'#generations figure[data-stage="{stage}"] img')
        assert shown.count() == 16
        api = httpx.post(
            f"{url}/mean-generate",
            json={"n": 16, "seed": 11, "stage": stage, "format": "json"},
            timeout=60,
        ).json()
        for k in range(16):
            np.testing.assert_array_equal(
                pixels_of_data_url(shown.nth(k).get_attribute("src")),
                pixels_of(base64.b64decode(api["images"][k])),
                err_msg=f"stage {stage} image {k}",
            )
    assert "seed=11" in page.url and '"seed":11' in page.inner_text("#generate-curl")

    frames = page.locator("#interpolation img")
    assert frames.count() == 8
    for index, seed in ((0, 11), (7, 12)):
        end = httpx.post(
            f"{url}/mean-generate", json={"n": 1, "seed": seed, "format": "json"}, timeout=60
        ).json()
        np.testing.assert_array_equal(
            pixels_of_data_url(frames.nth(index).get_attribute("src")),
            pixels_of(base64.b64decode(end["images"][0])),
            err_msg=f"interpolation frame {index} against seed {seed}",
        )

    latents = card["metrics_json"]["latents"]
    active = {latent["index"] for latent in latents if not latent["inactive"]}
    inactive = [latent["index"] for latent in latents if latent["inactive"]]
    rows = page.locator("#traversal > .trow")
    shown_rows = [int(rows.nth(k).get_attribute("data-latent")) for k in range(rows.count())]
    assert sorted(shown_rows) == sorted(active) and len(shown_rows) == len(active)
    assert page.locator("#traversal > .trow").first.locator("img").count() == 7
    collapsed = page.locator("#traversal .inactive-rows")
    assert [int(i) for i in collapsed.get_attribute("data-inactive").split(",")] == inactive
    assert f"{len(inactive)} inactive latents" in collapsed.inner_text()
    assert page.locator("#latents tbody tr.inactive").count() == len(inactive)
    visit.check()


def test_an_uploaded_image_is_reconstructed_and_encoded_as_the_api_does(browser, servers, tmp_path):
    url = servers["batched"]
    picture = (np.random.default_rng(3).random((28, 28)) * 255).astype(np.uint8)
    path = tmp_path / "shirt.png"
    Image.fromarray(picture).save(path)
    visit = Visit(browser, url)
    page = visit.open()
    page.set_input_files("#image", str(path))
    page.wait_for_selector("#posterior:not([hidden]) tbody tr", timeout=60_000)
    upload = {"image": ("shirt.png", path.read_bytes(), "image/png")}
    from_mu = httpx.post(f"{url}/reconstruct", files=upload, timeout=60).content
    np.testing.assert_array_equal(
        pixels_of_data_url(page.get_attribute("#reconstruction img.from-mu", "src")),
        pixels_of(from_mu),
    )
    samples = page.locator("#reconstruction img.posterior-sample")
    assert samples.count() == 3
    drawn = httpx.post(
        f"{url}/reconstruct", files=upload, data={"sample": "true", "seed": "2"}, timeout=60
    ).content
    np.testing.assert_array_equal(
        pixels_of_data_url(samples.nth(1).get_attribute("src")), pixels_of(drawn)
    )
    posterior = httpx.post(f"{url}/encode", files=upload, timeout=60).json()
    cells = page.locator("#posterior tbody tr td:nth-child(2)").all_inner_texts()
    np.testing.assert_allclose([float(c) for c in cells], posterior["mu"], rtol=1e-3, atol=1e-6)
    visit.check()


def test_a_bad_value_shows_the_apis_message_next_to_its_field(browser, servers):
    url = servers["batched"]
    visit = Visit(browser, url)
    page = visit.open()
    page.fill("#seed", "-1")
    page.click("#generate-form button[type=submit]")
    page.wait_for_function("document.getElementById('seed-error').textContent.length > 0")
    expected = httpx.post(f"{url}/mean-generate", json={"n": 16, "seed": -1, "stage": 1})
    assert expected.status_code == 400
    assert page.inner_text("#seed-error") == expected.json()["error"]
    visit.check(allowed=[r"status of 400"])


def test_with_a_token_the_page_asks_for_it_and_then_works(browser, servers):
    visit = Visit(browser, servers["hub"])
    page = visit.open(ready=False)
    page.wait_for_selector("#token-box:not([hidden])", timeout=30_000)
    assert "Authorization: Bearer" in page.inner_text("#token-error")
    assert page.locator("#generations img").count() == 0
    page.fill("#token", TOKEN)
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    assert page.locator("#generations img").count() == 32
    assert page.locator("#token-box").is_hidden()
    visit.check(allowed=[r"status of 401"])
