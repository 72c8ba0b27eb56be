"""The packaged bento as an OCI image, built with BentoML's buildah/podman backend.

- `configure_bento_context`: at `recops bento build`, the staged bentofile gets the configured
  base image and a Dockerfile template (build-only ARGs for a CA bundle / package index, the
  system packages, a HEALTHCHECK on `/readyz`, STOPSIGNAL SIGTERM).
- `containerize`: `--backend buildah|podman`; the CA bundle and index settings are mounted into
  the build (a volume) and referenced by path, so they never end up in an image layer or its
  config. The base image is built first (`recops.serving.container`) when it is the local one
  and missing.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from recops.errors import ConfigError
from recops.serving.config import ContainerConfig, ServeConfig
from recops.serving.container import (
    SHOWN,
    ContainerError,
    build_base_image,
    config_dir,
    engine_binary,
    engine_env,
    image_exists,
    working_directory,
)

log = logging.getLogger(__name__)
TEMPLATE_FILE = "Dockerfile.template"
#: Where the build-only settings folder is mounted during `RUN` steps.
BUILD_MOUNT = "/run/recops-build"


# -- the bento's build context ------------------------------------------------------------------
def dockerfile_template(cfg: ContainerConfig, system_packages: Sequence[str] = ()) -> str:
    """BentoML Dockerfile template: build-only ARGs (paths into the mounted settings folder,
    never values), the bentofile's system packages (BentoML skips them on a custom base
    image; apt-get, so a Debian/Ubuntu base), a HEALTHCHECK on /readyz and SIGTERM as the stop
    signal."""
    hc = cfg.healthcheck
    apt = ""
    if system_packages:
        apt = (
            "{% block SETUP_BENTO_COMPONENTS %}\n"
            "RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -q -y "
            f"--no-install-recommends {' '.join(system_packages)} && rm -rf /var/lib/apt/lists/*\n"
            "{{ super() }}\n"
            "{% endblock %}\n"
        )
    probe = (
        "import os, urllib.request as u; "
        "h = os.environ.get('BENTOML_HOST', '127.0.0.1'); "
        "h = '127.0.0.1' if h in ('0.0.0.0', '::') else h; "
        "u.urlopen('http://%s:%s/readyz' % (h, os.environ.get('BENTOML_PORT', '3000')), "
        f"timeout={hc.timeout_s})"
    )
    return (
        "{% extends bento_base_template %}\n"
        "{% block SETUP_BENTO_BASE_IMAGE %}\n"
        "{{ super() }}\n"
        "# Build-only settings (recops bento containerize): paths into a folder mounted for the\n"
        "# RUN steps; ARGs are not kept in the image's environment.\n"
        "ARG SSL_CERT_FILE\n"
        "ARG PIP_CERT\n"
        "ARG PIP_CONFIG_FILE\n"
        "ARG UV_CONFIG_FILE\n"
        "# Debian's python3-pip refuses to install into the system Python without it (PEP 668);\n"
        "# only `pip install uv` uses the system pip, everything else goes into /app/.venv.\n"
        "ARG PIP_BREAK_SYSTEM_PACKAGES=1\n"
        "{% endblock %}\n"
        f"{apt}"
        "{% block SETUP_BENTO_ENTRYPOINT %}\n"
        "{{ super() }}\n"
        "STOPSIGNAL SIGTERM\n"
        f"HEALTHCHECK --interval={hc.interval_s}s --timeout={hc.timeout_s}s "
        f"--start-period={hc.start_period_s}s --retries={hc.retries} "
        f'CMD python -c "{probe}"\n'
        "{% endblock %}\n"
    )


def configure_bento_context(cfg: ServeConfig, context: Path) -> None:
    """Point the staged bentofile at the configured base image and the Dockerfile template."""
    bentofile = context / "bentofile.yaml"
    spec = yaml.safe_load(bentofile.read_text()) or {}
    docker = dict(spec.get("docker") or {})
    docker["base_image"] = cfg.container.base_image
    docker["dockerfile_template"] = TEMPLATE_FILE
    packages = [str(p) for p in docker.pop("system_packages", None) or []]
    spec["docker"] = docker
    (context / TEMPLATE_FILE).write_text(dockerfile_template(cfg.container, packages))
    bentofile.write_text(yaml.safe_dump(spec, sort_keys=False))


# -- build ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildSettings:
    """CA bundle and index settings for one build (overrides of serve.container)."""

    ca_bundle: str | None = None
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()

    @classmethod
    def of(cls, cfg: ContainerConfig, **overrides: Any) -> BuildSettings:
        values: dict[str, Any] = {
            "ca_bundle": cfg.ca_bundle,
            "index_url": cfg.index_url,
            "extra_index_urls": cfg.extra_index_urls,
        }
        values.update({k: v for k, v in overrides.items() if v})
        return cls(**values)


@contextmanager
def build_settings_folder(settings: BuildSettings, parent: Path) -> Iterator[dict[str, str]]:
    """A private folder with the CA bundle and pip/uv configs, mounted into the build; yields
    the build args (paths only). Removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="build-settings-", dir=parent) as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        args: dict[str, str] = {}
        pip = ["[global]"]
        uv = ["[pip]"]
        if settings.ca_bundle:
            source = Path(settings.ca_bundle).expanduser()
            if not source.is_file():
                raise ConfigError(f"serve.container.ca_bundle: no such file {source}")
            shutil.copyfile(source, folder / "ca.pem")
            args["SSL_CERT_FILE"] = args["PIP_CERT"] = f"{BUILD_MOUNT}/ca.pem"
            pip.append(f"cert = {BUILD_MOUNT}/ca.pem")
        if settings.index_url:
            pip.append(f"index-url = {settings.index_url}")
            uv.append(f"index-url = {_toml_string(settings.index_url)}")
        if settings.extra_index_urls:
            pip.append("extra-index-url = " + " ".join(settings.extra_index_urls))
            uv.append(
                "extra-index-url = ["
                + ", ".join(_toml_string(u) for u in settings.extra_index_urls)
                + "]"
            )
        if settings.index_url or settings.extra_index_urls:
            (folder / "pip.conf").write_text("\n".join(pip) + "\n")
            (folder / "uv.toml").write_text("\n".join(uv) + "\n")
            args["PIP_CONFIG_FILE"] = f"{BUILD_MOUNT}/pip.conf"
            args["UV_CONFIG_FILE"] = f"{BUILD_MOUNT}/uv.toml"
        for path in folder.iterdir():
            path.chmod(0o644)
        yield {"folder": str(folder), **args}


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def image_ref(cfg: ContainerConfig, bento_tag: str) -> str:
    """`<serve.container.image>:<bento version>`."""
    version = bento_tag.split(":", 1)[1] if ":" in bento_tag else "latest"
    return f"{cfg.image}:{version}"


class _BuildLines(logging.Handler):
    """BentoML logs every line of the build at INFO: keep them all in the build log, show the
    telling ones."""

    def __init__(self, log_file: Path) -> None:
        super().__init__(logging.INFO)
        self.file = log_file.open("a")

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.file.write(line + "\n")
        self.file.flush()
        if SHOWN.match(line):
            log.info("%s", line[:200])

    def close(self) -> None:
        self.file.close()
        super().close()


def containerize(
    cfg: ServeConfig, bento_tag: str, settings: BuildSettings, root: Path | None = None
) -> tuple[str, float]:
    """Build the image of `bento_tag`; returns its reference and the build time (s)."""
    import bentoml
    from bentoml._internal.configuration.containers import BentoMLContainer

    ccfg = cfg.container
    engine = engine_binary(ccfg)
    env = engine_env(ccfg, root)
    bento = bentoml.get(bento_tag)
    base = (bento.info.docker.base_image if hasattr(bento.info, "docker") else None) or ""
    if base != ccfg.base_image:
        raise ConfigError(
            f"bento {bento.tag} was built for base image {base or '(BentoML default)'!r}, "
            f"serve.container.base_image is {ccfg.base_image!r}: run `recops bento build` again"
        )
    if not image_exists(ccfg.base_image, env):
        if not ccfg.base_image.startswith("localhost/"):
            log.info("base image %s will be pulled by %s", ccfg.base_image, engine)
        else:
            log.info("base image %s not in the store: building it", ccfg.base_image)
            build_base_image(ccfg, root)
    ref = image_ref(ccfg, str(bento.tag))
    folder = config_dir(ccfg, root)
    log_file = folder / "logs" / f"build-{str(bento.tag).replace(':', '-')}.log"
    os.environ.update({k: env[k] for k in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF")})
    handler = _BuildLines(log_file)
    base_logger = logging.getLogger("bentoml._internal.container")
    base_logger.addHandler(handler)
    level = base_logger.level
    base_logger.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        with build_settings_folder(settings, folder) as build:
            mount = build.pop("folder")
            opts: dict[str, Any] = {
                "network": ccfg.network,
                "format": "docker",  # OCI images drop HEALTHCHECK
                "build_arg": build or None,
                "volume": f"{mount}:{BUILD_MOUNT}:ro",
            }
            if engine == "buildah":
                opts["isolation"] = "chroot"
            log.info(
                "building %s from %s with %s (%s; log %s)",
                ref,
                bento.tag,
                engine,
                ", ".join(sorted(build)) or "no CA bundle / index settings",
                log_file,
            )
            BentoMLContainer.bento_store.get()  # BENTOML_HOME is read before the build
            build_image: Any = bentoml.container.build  # typed per backend literal
            with working_directory(tempfile.gettempdir()):
                build_image(str(bento.tag), backend=engine, image_tag=(ref,), **opts)
    except bentoml.exceptions.BentoMLException as exc:
        raise ContainerError(f"image build failed: {exc}\n{_tail(log_file)}") from exc
    finally:
        base_logger.removeHandler(handler)
        base_logger.setLevel(level)
        handler.close()
    if not image_exists(ref, env):  # BentoML logs some failed builds without raising
        raise ContainerError(f"image build failed, no image {ref}\n{_tail(log_file)}")
    return ref, time.perf_counter() - started


def _tail(log_file: Path, lines: int = 15) -> str:
    text = log_file.read_text().splitlines()[-lines:] if log_file.exists() else []
    return f"full log: {log_file}\n" + "\n".join(text)
