"""A Hugging Face Hub stand-in on loopback, for offline tests of kvae.hub.

It answers the routes that `huggingface_hub` (2.4) uses to create a
repository, commit files (every file in "regular" upload mode, so no LFS or
Xet transfer), and resolve and download a revision: repository info, the file
tree, and `resolve` with the `X-Repo-Commit`, `ETag` and `Content-Length`
headers. Missing repositories, revisions and files are 404s with the Hub's
`X-Error-Code`. Repositories live in memory: {repo_id: {"refs": {branch:
commit}, "commits": {commit: {path: bytes}}}}; a commit id is the sha1 of its
parent and its files, a file's ETag the git blob sha1 of its bytes.

    with FakeHub() as hub:
        kvae.hub.push(folder, "hf://owner/name", endpoint=hub.url)
"""

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

REPO = r"(?P<repo>[^/]+/[^/]+)"


def git_blob_sha1(content):
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class FakeHub:
    """The server, started on a free loopback port; `url` is its endpoint,
    `requests` the (method, path) of every request it answered."""

    def __init__(self):
        self.repos = {}
        self.requests = []
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                hub.dispatch(self, "GET")

            def do_HEAD(self):
                hub.dispatch(self, "HEAD")

            def do_POST(self):
                hub.dispatch(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *error):
        self.server.shutdown()
        self.server.server_close()

    # -- routing ---------------------------------------------------------------------

    ROUTES = [
        ("POST", r"/api/repos/create", "create"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("POST", rf"/api/models/{REPO}/preupload/(?P<rev>.+)", "preupload"),
        ("POST", rf"/api/models/{REPO}/commit/(?P<rev>.+)", "commit"),
        ("POST", rf"/api/models/{REPO}/branch/(?P<rev>.+)", "branch"),
        ("GET", rf"/api/models/{REPO}/revision/(?P<rev>.+)", "info"),
        ("GET", rf"/api/models/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree"),
        ("GET", rf"/api/models/{REPO}", "info"),
        ("GET", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
        ("HEAD", rf"/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ]

    def dispatch(self, handler, method):
        path = unquote(urlparse(handler.path).path)
        with self.lock:
            self.requests.append((method, path))
        for route_method, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, path)
            if route_method == method and match:
                body = b""
                if method == "POST":
                    body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
                with self.lock:
                    status, headers, content = getattr(self, name)(body=body, **match.groupdict())
                break
        else:
            status, headers, content = 404, {"X-Error-Code": "EntryNotFound"}, b"no route"
        if isinstance(content, (dict, list)):
            content = json.dumps(content).encode()
            headers = {"Content-Type": "application/json", **headers}
        handler.send_response(status)
        headers.setdefault("Content-Length", str(len(content)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(content)

    # -- repositories and revisions --------------------------------------------------

    def _repo(self, repo):
        if repo not in self.repos:
            raise LookupError("RepoNotFound")
        return self.repos[repo]

    def _commit(self, repo, rev):
        """(commit id, files) of a branch or commit id."""
        record = self._repo(repo)
        commit = record["refs"].get(rev, rev)
        if commit not in record["commits"]:
            raise LookupError("RevisionNotFound")
        return commit, record["commits"][commit]

    @staticmethod
    def _not_found(error):
        code = str(error.args[0])
        return 404, {"X-Error-Code": code}, {"error": code}

    def create(self, body, **_):
        payload = json.loads(body)
        repo = f"{payload['organization']}/{payload['name']}"
        if repo in self.repos:
            return 409, {}, {"error": "You already created this model repo", "url": repo}
        empty = hashlib.sha1(repo.encode()).hexdigest()
        self.repos[repo] = {"refs": {"main": empty}, "commits": {empty: {}}}
        return 200, {}, {"url": f"{self.url}/{repo}", "name": repo}

    def validate_yaml(self, body, **_):
        return 200, {}, {}

    def preupload(self, body, repo, rev):
        try:
            self._repo(repo)
        except LookupError as error:
            return self._not_found(error)
        files = json.loads(body)["files"]
        return (
            200,
            {},
            {
                "files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    for f in files
                ],
                "commitOid": None,
            },
        )

    def commit(self, body, repo, rev):
        try:
            parent, files = self._commit(repo, rev)
        except LookupError as error:
            return self._not_found(error)
        files = dict(files)
        summary = ""
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item["key"] == "header":
                summary = item["value"].get("summary", "")
            elif item["key"] == "file":
                value = item["value"]
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "deletedFile":
                files.pop(item["value"]["path"], None)
        digest = hashlib.sha1(parent.encode() + summary.encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + git_blob_sha1(files[path]).encode())
        commit = digest.hexdigest()
        record = self.repos[repo]
        record["commits"][commit] = files
        record["refs"][rev] = commit
        return 200, {}, {"commitUrl": f"{self.url}/{repo}/commit/{commit}", "commitOid": commit}

    def branch(self, body, repo, rev):
        try:
            record = self._repo(repo)
        except LookupError as error:
            return self._not_found(error)
        if rev in record["refs"]:
            return 409, {}, {"error": "Reference already exists"}
        start = (json.loads(body or b"{}") or {}).get("startingPoint") or "main"
        record["refs"][rev] = record["refs"].get(start, start)
        return 200, {}, {}

    def info(self, body, repo, rev="main"):
        try:
            commit, files = self._commit(repo, rev)
        except LookupError as error:
            return self._not_found(error)
        return (
            200,
            {},
            {
                "id": repo,
                "modelId": repo,
                "sha": commit,
                "private": False,
                "siblings": [{"rfilename": path} for path in sorted(files)],
            },
        )

    def tree(self, body, repo, rev, path=None):
        try:
            _, files = self._commit(repo, rev)
        except LookupError as error:
            return self._not_found(error)
        prefix = (path or "").strip("/")
        entries = [
            {"type": "file", "oid": git_blob_sha1(content), "size": len(content), "path": name}
            for name, content in sorted(files.items())
            if not prefix or name.startswith(prefix + "/")
        ]
        return 200, {}, entries

    def resolve(self, body, repo, rev, path):
        try:
            commit, files = self._commit(repo, rev)
        except LookupError as error:
            return self._not_found(error)
        if path not in files:
            return 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, b""
        content = files[path]
        return (
            200,
            {
                "X-Repo-Commit": commit,
                "ETag": f'"{git_blob_sha1(content)}"',
                "Content-Type": "application/octet-stream",
            },
            content,
        )
