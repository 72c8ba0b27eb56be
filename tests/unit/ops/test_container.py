"""Container pieces that need no engine: the staged bentofile and Dockerfile template, the
build-only settings folder, the engine config files, the apt mirror, the `podman run` line."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from recops.config import compose
from recops.errors import ConfigError
from recops.serving.config import ContainerConfig, ServeConfig
from recops.serving.container import (
    ContainerError,
    apt_mirror,
    engine_binary,
    engine_env,
    run_args,
)
from recops.serving.image import (
    BUILD_MOUNT,
    TEMPLATE_FILE,
    BuildSettings,
    build_settings_folder,
    configure_bento_context,
    image_ref,
)

PROJECT = Path(__file__).resolve().parents[3]


def shipped_serve() -> ServeConfig:
    """`conf/serve` as shipped (the only home of the serving defaults)."""
    return ServeConfig.from_config(compose([]))


def container_config(**changes: object) -> ContainerConfig:
    return replace(shipped_serve().container, **changes)  # type: ignore[arg-type]


def test_bento_context_gets_base_image_template_and_packages(tmp_path: Path) -> None:
    shutil.copy2(PROJECT / "bentos" / "bentofile.yaml", tmp_path / "bentofile.yaml")
    shipped = shipped_serve()
    cfg = shipped.replace(
        container=container_config(
            base_image="docker.io/library/python:3.11-slim",
            healthcheck=replace(shipped.container.healthcheck, interval_s=7, start_period_s=20),
        )
    )
    configure_bento_context(cfg, tmp_path)
    spec = yaml.safe_load((tmp_path / "bentofile.yaml").read_text())
    assert spec["docker"]["base_image"] == "docker.io/library/python:3.11-slim"
    assert spec["docker"]["dockerfile_template"] == TEMPLATE_FILE
    assert "system_packages" not in spec["docker"]  # moved into the template (apt-get)
    assert spec["service"] == "service:RecOps"  # the rest is kept
    template = (tmp_path / TEMPLATE_FILE).read_text()
    assert template.startswith("{% extends bento_base_template %}")
    assert "apt-get install" in template and "build-essential python3-dev" in template
    assert "HEALTHCHECK --interval=7s" in template and "--start-period=20s" in template
    assert "/readyz" in template and "STOPSIGNAL SIGTERM" in template
    for arg in ("SSL_CERT_FILE", "PIP_CONFIG_FILE", "UV_CONFIG_FILE"):
        assert f"ARG {arg}\n" in template  # declared without a value: nothing baked in
    assert "ENV SSL_CERT_FILE" not in template


def test_build_settings_are_files_in_a_private_folder(tmp_path: Path) -> None:
    ca = tmp_path / "proxy-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n")
    settings = BuildSettings.of(
        container_config(extra_index_urls=("https://mirror.example/simple",)),
        ca_bundle=str(ca),
        index_url="https://user:token@pypi.example/simple",
    )
    with build_settings_folder(settings, tmp_path) as args:
        folder = Path(args.pop("folder"))
        assert args == {
            "SSL_CERT_FILE": f"{BUILD_MOUNT}/ca.pem",
            "PIP_CERT": f"{BUILD_MOUNT}/ca.pem",
            "PIP_CONFIG_FILE": f"{BUILD_MOUNT}/pip.conf",
            "UV_CONFIG_FILE": f"{BUILD_MOUNT}/uv.toml",
        }
        assert "token" not in str(args)  # credentials only in the mounted files
        assert (folder / "ca.pem").read_text() == ca.read_text()
        uv = (folder / "uv.toml").read_text()
        assert 'index-url = "https://user:token@pypi.example/simple"' in uv
        assert 'extra-index-url = ["https://mirror.example/simple"]' in uv
        assert (
            "index-url = https://user:token@pypi.example/simple"
            in (folder / "pip.conf").read_text()
        )
    assert not folder.exists()  # removed after the build
    with (
        pytest.raises(ConfigError, match="no such file"),
        build_settings_folder(BuildSettings(ca_bundle=str(tmp_path / "nope.pem")), tmp_path),
    ):
        pass
    with build_settings_folder(BuildSettings(), tmp_path) as none:
        assert set(none) == {"folder"}


def test_engine_config_files(tmp_path: Path) -> None:
    env = engine_env(container_config(config_dir=str(tmp_path / "c"), storage_driver="vfs"))
    containers = Path(env["CONTAINERS_CONF"]).read_text()
    storage = Path(env["CONTAINERS_STORAGE_CONF"]).read_text()
    assert 'runtime = "runc"' in containers and "default_ulimits" in containers
    assert 'driver = "vfs"' in storage and f'graphroot = "{tmp_path / "c" / "storage"}"' in storage


def test_engine_choice() -> None:
    with pytest.raises(ConfigError, match=r"serve\.container\.engine"):
        engine_binary(container_config(engine="docker"))
    installed = [e for e in ("buildah", "podman") if shutil.which(e)]
    if installed:
        assert engine_binary(container_config()) == installed[0]
    else:
        with pytest.raises(ContainerError, match="make system"):
            engine_binary(container_config())


def test_apt_mirror_from_either_format(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
    )
    assert apt_mirror([deb822]) == "http://mirror.example/debian"
    classic = tmp_path / "sources.list"
    classic.write_text("# comment\ndeb [arch=amd64] http://other.example/debian bookworm main\n")
    assert apt_mirror([tmp_path / "missing", classic]) == "http://other.example/debian"
    assert apt_mirror([tmp_path / "missing"]) == "http://deb.debian.org/debian"


def test_run_line_binds_explicitly() -> None:
    cfg = container_config()
    cmd = run_args(cfg, "localhost/recops:abc", 3456, "recops-3456", detach=True)
    assert cmd[-5:] == ["localhost/recops:abc", "--host", "127.0.0.1", "--port", "3456"]
    assert "BENTOML_HOST=127.0.0.1" in cmd and "BENTOML_PORT=3456" in cmd
    assert cmd[cmd.index("--network") + 1] == "host" and "-d" in cmd and "--rm" not in cmd
    fg = run_args(cfg, "img", 80, "n", detach=False, env_vars=["A=1"], host="10.0.0.5")
    assert "--rm" in fg and "A=1" in fg and fg[-4:] == ["--host", "10.0.0.5", "--port", "80"]
    assert image_ref(cfg, "recops:v123") == "localhost/recops:v123"
