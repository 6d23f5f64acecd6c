"""The wheel: a non-editable install carries the shipped checkpoints and explains from any directory."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True)
    return next(out.glob("jaxplain-*.whl"))


def test_the_wheel_carries_every_shipped_artefact(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [p.name for p in (ROOT / "checkpoints").iterdir() if (p / "config.json").is_file()]
    assert {"vae_imagenet64", "vae_cifar10", "cifar10_resnet_small"} <= set(shipped)
    for artefact in shipped:
        assert f"jaxplain/checkpoints/{artefact}/config.json" in names
        files = [p for p in (ROOT / "checkpoints" / artefact / "variables").rglob("*") if p.is_file()]
        for file in files:
            assert f"jaxplain/checkpoints/{file.relative_to(ROOT / 'checkpoints')}" in names
    assert "jaxplain/models/imagenet_classes.tsv" in names
    for clip in (ROOT / "jaxplain" / "assets" / "clips").glob("*.wav"):
        assert f"jaxplain/assets/clips/{clip.name}" in names


def test_an_installed_wheel_explains_with_relabel_from_another_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    script = (
        "import jaxplain, numpy as np\n"
        "from jaxplain import runner, zoo\n"
        f"assert jaxplain.__file__.startswith({str(target)!r}), jaxplain.__file__\n"
        "model = zoo.load_model('cifar10_resnet_small')\n"
        "image = np.random.default_rng(0).random((1, 32, 32, 3), np.float32)\n"
        "maps = runner.explain(model, 'relabel', image, num_samples=100, chunk=50, student_steps=20)\n"
        "assert maps.shape == (1, 32, 32) and np.isfinite(maps).all()\n"
        "print('ok', zoo.load_vae('vae_cifar10').module.resolution)\n"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok 32"
