"""The papers' FID network's archive: TensorFlow's `inception-2015-12-05.tgz`,
whose `classify_image_graph_def.pb` both original code bases compute their
FID on (2048 features of `pool_3:0`; `kvae.inception_graph` feeds it under
each paper's protocol). Evaluation never downloads: `python -m kvae.features
download-inception` fetches the archive into the Keras cache, or the user
gives the archive's path.

How kvae knows the file is the papers' network (`establish`). No sha256 of
the archive was ever published, but the archive carries its own test:
TensorFlow's classify_image.py tutorial fed the JPEG bytes of the archive's
`cropped_panda.jpg` to `DecodeJpeg/contents:0` and printed the top five of
`softmax:0`, named through the archive's two label maps, and many public
logs from 2017 to 2019 repeat the answer (`PUBLISHED_TOP5`) beside the
archive's size, 88,931,400 bytes. Before an archive is used the first time,
kvae checks its size, its members and that test: the same five classes in
the same order, the top score within `TOP_SCORE_TOLERANCE` of a published
one (JPEG decoders of other versions moved it by up to 0.006). A file that
passes is recorded with its sha256 in kvae's cache (`verified_record`), so a
later change of the file is refused without running the test again (trust
on first verified use). A digest in `KVAE_INCEPTION_SHA256` (the user's pin)
replaces the test. Every FID records how its network was established.
"""

import json
import os
import re
import tarfile
import time
from pathlib import Path

import numpy as np

from kvae import files
from kvae.errors import KvaeError
from kvae.files import digest as file_digest

ARCHIVE_NAME = "inception-2015-12-05.tgz"
ARCHIVE_URL = "http://download.tensorflow.org/models/image/imagenet/" + ARCHIVE_NAME
GRAPH_MEMBER = "classify_image_graph_def.pb"
ARCHIVE_SIZE = 88_931_400
"""The official archive's size in bytes, as the tutorial's download printed it."""
PANDA_MEMBER = "cropped_panda.jpg"
LABEL_MAP_MEMBER = "imagenet_2012_challenge_label_map_proto.pbtxt"
SYNSET_MEMBER = "imagenet_synset_to_human_label_map.txt"
MEMBERS = (GRAPH_MEMBER, PANDA_MEMBER, LABEL_MAP_MEMBER, SYNSET_MEMBER)
PUBLISHED_TOP5 = ("giant panda", "indri", "lesser panda", "custard apple", "earthstar")
"""The first name of each of the five classes classify_image.py printed for
cropped_panda.jpg, best first."""
PUBLISHED_TOP_SCORES = (0.89107, 0.88493, 0.89103)
"""The giant panda's score in public logs (TensorFlow 1.x builds), on the
tutorial's own page, and from a ROCm build."""
TOP_SCORE_TOLERANCE = 0.01
VERIFIED_BY_TEST = "published size and classifications"

SHA256_VARIABLE = "KVAE_INCEPTION_SHA256"
DOWNLOAD_COMMAND = "python -m kvae.features download-inception"


class InceptionUnavailable(KvaeError):
    """The Inception archive is missing, unreadable or not the expected file."""


# -- the archive -----------------------------------------------------------------------------


def keras_cache():
    """Keras's cache folder: $KERAS_HOME, else ~/.keras (as Keras)."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    home = Path.home()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def cached_archive():
    """Where `download-inception` puts the archive: the Keras cache's models/."""
    return keras_cache() / "models" / ARCHIVE_NAME


def expected_sha256():
    """The digest the user pinned ($KVAE_INCEPTION_SHA256), or None."""
    pinned = os.environ.get(SHA256_VARIABLE)
    return pinned.lower() if pinned else None


def locate(path=None):
    """The archive to use: `path` if given, else the one in the Keras cache.

    Raises:
        InceptionUnavailable: one line naming the download command, the URL
            and the `inception` argument (the archive's path).
    """
    candidate = Path(path) if path is not None else cached_archive()
    if candidate.is_file():
        return candidate
    where = (
        f"the archive {candidate} does not exist"
        if path is not None
        else f"no {ARCHIVE_NAME} in the Keras cache ({candidate})"
    )
    raise InceptionUnavailable(
        f"FID needs the Inception graph of the papers: {where}. On a machine with internet run "
        f"`{DOWNLOAD_COMMAND}` (it fetches {ARCHIVE_URL} into the Keras cache), or download "
        f"that file yourself and give its path as inception. No FID is reported without it.",
        argument="inception",
    )


def verify(path, expected=None):
    """The archive's sha256, checked against `expected` (default:
    `expected_sha256()`; None checks nothing).

    Raises:
        InceptionUnavailable: the digests differ (both are in the message).
    """
    expected = expected_sha256() if expected is None else expected.lower()
    digest = file_digest(path, "sha256")
    if expected is not None and digest != expected:
        raise InceptionUnavailable(
            f"{path} is not the expected {ARCHIVE_NAME}: its sha256 is {digest}, "
            f"kvae expects {expected}. Download it again with `{DOWNLOAD_COMMAND}`."
        )
    return digest


def verified_record():
    """Where kvae records the archives it verified: {resolved path: {"sha256",
    "verified_by", "top5"}} in the Keras cache."""
    return keras_cache() / "kvae" / "inception-verified.json"


def _read_records():
    try:
        return json.loads(verified_record().read_text())
    except (OSError, ValueError):
        return {}


def read_member(archive, name):
    """The bytes of one member of the archive (InceptionUnavailable if it is
    not a gzipped tar or lacks the member)."""
    try:
        with tarfile.open(archive, mode="r:gz") as bundle:
            return bundle.extractfile(name).read()
    except (tarfile.TarError, KeyError, OSError, AttributeError) as error:
        raise InceptionUnavailable(
            f"{archive} is not an {ARCHIVE_NAME} with {name}: {type(error).__name__}"
        ) from error


def label_names(archive):
    """{softmax index: first class name} from the archive's two label maps
    (node id -> WordNet id -> "giant panda, panda, ...")."""
    proto = read_member(archive, LABEL_MAP_MEMBER).decode()
    uids = {
        int(node): uid
        for node, uid in re.findall(
            r'target_class:\s*(\d+)\s+target_class_string:\s*"([^"]+)"', proto
        )
    }
    human = {}
    for line in read_member(archive, SYNSET_MEMBER).decode().splitlines():
        uid, _, text = line.partition("\t")
        human[uid.strip()] = text.split(",")[0].strip()
    return {node: human.get(uid, uid) for node, uid in uids.items()}


def classify_panda(archive):
    """[(first class name, score)] of the top five of `softmax:0` when the
    archive's graph is fed the JPEG bytes of its cropped_panda.jpg, as
    classify_image.py does."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(read_member(archive, GRAPH_MEMBER))
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise InceptionUnavailable(f"{GRAPH_MEMBER} is not a GraphDef: {error}") from error
    jpeg = read_member(archive, PANDA_MEMBER)

    def imported(contents):
        (softmax,) = tf.compat.v1.import_graph_def(
            graph_def,
            input_map={"DecodeJpeg/contents:0": contents},
            return_elements=["softmax:0"],
            name="classify",
        )
        return softmax

    try:
        function = tf.compat.v1.wrap_function(imported, [tf.TensorSpec([], tf.string)])
        scores = np.asarray(function(tf.constant(jpeg))).reshape(-1)
    except (ValueError, KeyError, tf.errors.OpError) as error:
        raise InceptionUnavailable(
            f"{GRAPH_MEMBER} cannot classify {PANDA_MEMBER} (DecodeJpeg/contents:0 -> softmax:0): "
            f"{type(error).__name__}"
        ) from error
    names = label_names(archive)
    best = np.argsort(scores)[::-1][:5]
    return [(names.get(int(index), f"class {int(index)}"), float(scores[index])) for index in best]


def check_classifications(top5):
    """Raise InceptionUnavailable unless `top5` is the published answer (see
    the module doc)."""
    found = [name for name, _ in top5]
    if found != list(PUBLISHED_TOP5):
        raise InceptionUnavailable(
            f"the archive's graph is not the papers' network: on cropped_panda.jpg its top five "
            f"are {', '.join(found)}; the published ones are {', '.join(PUBLISHED_TOP5)}"
        )
    top = top5[0][1]
    if min(abs(top - published) for published in PUBLISHED_TOP_SCORES) > TOP_SCORE_TOLERANCE:
        raise InceptionUnavailable(
            f"the archive's graph gives cropped_panda.jpg a score of {top:.5f} for giant panda; "
            f"the published ones are {', '.join(map(str, PUBLISHED_TOP_SCORES))} "
            f"(tolerance {TOP_SCORE_TOLERANCE})"
        )


def establish(path, expected=None):
    """How the archive at `path` is known to be the papers' network, checked:
    {"network_sha256", "verified_by", ...}. A pinned digest (`expected`, else
    $KVAE_INCEPTION_SHA256) is checked alone; otherwise a file verified
    before must still have the digest recorded then, and a new one must pass
    the size, members and classification test (then it is recorded).

    Raises:
        InceptionUnavailable: one line saying what was expected and found.
    """
    path = Path(path)
    pinned = expected.lower() if expected else expected_sha256()
    if pinned is not None:
        return {
            "network_sha256": verify(path, pinned),
            "verified_by": f"pinned sha256 ({SHA256_VARIABLE})",
        }
    key = str(path.resolve())
    records = _read_records()
    digest = file_digest(path, "sha256")
    if key in records:
        record = records[key]
        if record["sha256"] != digest:
            raise InceptionUnavailable(
                f"{path} changed since kvae verified it: its sha256 was {record['sha256']}, it is "
                f"now {digest}. Download it again with `{DOWNLOAD_COMMAND}`."
            )
        return {"network_sha256": digest, **{k: v for k, v in record.items() if k != "sha256"}}
    size = path.stat().st_size
    if size != ARCHIVE_SIZE:
        raise InceptionUnavailable(
            f"{path} has {size:,} bytes; the published {ARCHIVE_NAME} has {ARCHIVE_SIZE:,}. "
            f"Download it again with `{DOWNLOAD_COMMAND}`."
        )
    for member in MEMBERS:
        read_member(path, member)
    top5 = classify_panda(path)
    check_classifications(top5)
    record = {
        "sha256": digest,
        "verified_by": VERIFIED_BY_TEST,
        "top5": [[name, round(score, 5)] for name, score in top5],
        "verified_on": time.strftime("%Y-%m-%d"),
    }
    records[key] = record
    verified_record().parent.mkdir(parents=True, exist_ok=True)
    files.write_json(verified_record(), records)
    return {"network_sha256": digest, **{k: v for k, v in record.items() if k != "sha256"}}


def read_graph_def(archive):
    """The serialized GraphDef (bytes) of the archive's graph member."""
    return read_member(archive, GRAPH_MEMBER)


def download(cache_dir=None):
    """Fetch the archive into the Keras cache (keras.utils.get_file) and
    establish it (`establish`); return (path, provenance). A file already
    there is checked, not fetched again; a file that fails is deleted."""
    import keras

    path = Path(
        keras.utils.get_file(
            fname=ARCHIVE_NAME,
            origin=ARCHIVE_URL,
            cache_dir=str(cache_dir or keras_cache()),
            cache_subdir="models",
        )
    )
    try:
        provenance = establish(path)
    except InceptionUnavailable:
        path.unlink()
        raise
    return path, provenance
