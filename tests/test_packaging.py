"""The wheel is a zoo on its own: built from this checkout, installed
without the source tree, run from another folder, it loads the default
model and generates the checkout's pixels."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from kvae import catalog

ROOT = Path(__file__).resolve().parent.parent

GENERATE = """
import sys
import numpy as np
import kvae
from kvae import catalog
images = kvae.zoo.load(catalog.DEFAULT_MODEL).generate(4, mode="mean", seed=3)
np.save(sys.argv[1], images)
print(kvae.__file__)
print(catalog.default_dir())
"""


def test_the_installed_wheel_loads_the_default_model_without_the_source_tree(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", tmp_path],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("kvae-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(ROOT)) for p in (ROOT / "kvae").rglob("*.py")}
    assert sources <= names, sorted(sources - names)  # every module is packaged
    default = f"kvae/_zoo/{catalog.DEFAULT_MODEL}/"
    assert {"kvae/_zoo/manifest.json", default + "stage1.keras", default + "stage2.keras"} <= names
    assert not any(name.startswith("kvae/_zoo/fmnist_mse/") for name in names)  # default only
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k != catalog.ZOO_ENV},
        "PYTHONPATH": str(site),  # before the checkout's editable install
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    result = subprocess.run(
        [sys.executable, "-c", GENERATE, tmp_path / "images.npy"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    module, zoo_dir = result.stdout.strip().splitlines()[-2:]
    assert module == str(site / "kvae" / "__init__.py")  # the wheel's kvae, not the checkout's
    assert zoo_dir == str(site / "kvae" / "_zoo")
    import kvae

    expected = kvae.zoo.load(catalog.DEFAULT_MODEL).generate(4, mode="mean", seed=3)
    np.testing.assert_array_equal(np.load(tmp_path / "images.npy"), expected)
