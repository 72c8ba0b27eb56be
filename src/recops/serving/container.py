"""The packaged bento as an OCI image, built and run with podman/buildah (no Docker daemon).

- `configure_bento_context`: at `recops bento build`, the staged bentofile gets the configured
  base image and a Dockerfile template (build-only ARGs for a CA bundle / package index, a
  HEALTHCHECK on `/readyz`, STOPSIGNAL SIGTERM).
- `engine_env`: containers.conf (runc, ulimits) and storage.conf (own image store) written to
  `serve.container.config_dir`, pointed at by `CONTAINERS_CONF` / `CONTAINERS_STORAGE_CONF`.
- `build_base_image`: a Python base image from Debian packages (debootstrap + `podman import`)
  for machines that reach a Debian mirror but no container registry.
- `containerize`: BentoML's builder with `--backend buildah|podman`; the CA bundle and index
  settings are mounted into the build (a volume) and referenced by path, so they never end up
  in an image layer or its config.
- `run_args` / `stop`: `podman run` with the bind address explicit, `podman stop` (SIGTERM,
  graceful drain) with its exit code.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from recops.config import resolve_path
from recops.errors import ConfigError, RecopsError
from recops.serving.config import ContainerConfig, ServeConfig

log = logging.getLogger(__name__)
ENGINES = ("buildah", "podman")
TEMPLATE_FILE = "Dockerfile.template"
#: Where the build-only settings folder is mounted during `RUN` steps.
BUILD_MOUNT = "/run/recops-build"
#: Build output lines worth showing live (the rest goes to the build log file).
_SHOWN = re.compile(
    r"^(STEP \d+/\d+|COMMIT|Successfully|Writing manifest|Resolved \d+|Prepared \d+|Installed \d+|"
    r"I: (Retrieving (InRelease|Packages)|Resolving|Unpacking the|Configuring the|Installing core|"
    r"Base system)|E: |error|Error)"
)


_SOURCE = re.compile(r"(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)")


class ContainerError(RecopsError):
    """A container tool is missing or a build/run step failed."""


def engine_binary(cfg: ContainerConfig) -> str:
    """The build engine: `serve.container.engine`, or the first of buildah/podman installed."""
    if cfg.engine not in ("auto", *ENGINES):
        raise ConfigError(
            f"serve.container.engine must be auto, buildah or podman, got {cfg.engine!r}"
        )
    wanted = ENGINES if cfg.engine == "auto" else (cfg.engine,)
    for name in wanted:
        if shutil.which(name):
            return name
    raise ContainerError(
        f"{' or '.join(wanted)} is not installed: `make system` installs the Debian packages "
        "(podman buildah runc debootstrap)"
    )


def podman_binary() -> str:
    if not shutil.which("podman"):
        raise ContainerError("podman is not installed: `make system` (Debian package podman)")
    return "podman"


def config_dir(cfg: ContainerConfig, root: Path | None = None) -> Path:
    return resolve_path(cfg.config_dir, root)


def engine_env(cfg: ContainerConfig, root: Path | None = None) -> dict[str, str]:
    """Write containers.conf/storage.conf into the project's config dir; the environment that
    points podman/buildah at them (applies to every call made with it)."""
    folder = config_dir(cfg, root)
    folder.mkdir(parents=True, exist_ok=True)
    containers = folder / "containers.conf"
    storage = folder / "storage.conf"
    # crun fails here on setrlimit(RLIMIT_NOFILE) and cgroups; runc with explicit ulimits works.
    containers.write_text(
        "# written by recops (serve.container); edits are overwritten\n"
        "[containers]\n"
        'default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
    )
    storage.write_text(
        "# written by recops (serve.container); edits are overwritten\n"
        "[storage]\n"
        f'driver = "{cfg.storage_driver}"\n'
        f'graphroot = "{folder / "storage"}"\n'
        f'runroot = "{folder / "run"}"\n'
    )
    return {
        **os.environ,
        "CONTAINERS_CONF": str(containers),
        "CONTAINERS_STORAGE_CONF": str(storage),
    }


def run_logged(
    cmd: Sequence[str],
    env: dict[str, str],
    log_file: Path,
    stdin: Any = None,
    shown: Callable[[str], bool] = lambda line: bool(_SHOWN.match(line)),
) -> None:
    """Run `cmd`, every output line to `log_file`, the telling ones to the log as they come;
    on failure the last lines go into the error."""
    tail: list[str] = []
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        proc = subprocess.Popen(
            list(cmd),
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            out.write(line + "\n")
            tail = [*tail[-29:], line]
            if shown(line):
                log.info("%s", line[:200])
        code = proc.wait()
    if code != 0:
        last = "\n".join(tail[-15:])
        raise ContainerError(f"{cmd[0]} failed (exit {code}); full log: {log_file}\n{last}")


def image_exists(image: str, env: dict[str, str]) -> bool:
    proc = subprocess.run(
        [podman_binary(), "image", "exists", image], env=env, capture_output=True, check=False
    )
    return proc.returncode == 0


def image_size(image: str, env: dict[str, str]) -> int:
    out = subprocess.run(
        [podman_binary(), "image", "inspect", image, "--format", "{{.Size}}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip() or 0)


def apt_mirror(sources: Sequence[Path] = ()) -> str:
    """The Debian mirror apt uses on this machine (deb822 `URIs:` or a `deb URL` line)."""
    paths = list(sources) or [
        Path("/etc/apt/sources.list"),
        *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
        *sorted(Path("/etc/apt/sources.list.d").glob("*.list")),
    ]
    for path in paths:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            match = _SOURCE.match(line.strip())
            if match and "security" not in match.group(1):
                return match.group(1)
    return "http://deb.debian.org/debian"


def build_base_image(cfg: ContainerConfig, root: Path | None = None) -> str:
    """`serve.container.base_image` from Debian packages: debootstrap a minimal root file system
    with Python, then `podman import` it. Needs root (debootstrap) and a Debian mirror."""
    if not shutil.which("debootstrap"):
        raise ContainerError("debootstrap is not installed: `make system` (Debian debootstrap)")
    if os.geteuid() != 0:
        raise ContainerError("recops bento base-image runs debootstrap, which needs root")
    env = engine_env(cfg, root)
    mirror = cfg.mirror or apt_mirror()
    folder = config_dir(cfg, root)
    log_file = folder / "logs" / "base-image.log"
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=folder) as tmp:
        rootfs = Path(tmp) / "rootfs"
        log.info(
            "debootstrap %s from %s with %s (about 40 s)",
            cfg.suite,
            mirror,
            ",".join(cfg.base_packages),
        )
        run_logged(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(cfg.base_packages)}",
                cfg.suite,
                str(rootfs),
                mirror,
            ],
            env,
            log_file,
        )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        log.info("importing the root file system as %s", cfg.base_image)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            run_logged(
                [
                    podman_binary(),
                    "import",
                    "--change",
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--change",
                    "CMD /bin/bash",
                    "-",
                    cfg.base_image,
                ],
                env,
                log_file,
                stdin=tar.stdout,
            )
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait()
    return cfg.base_image


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


@contextmanager
def working_directory(folder: Path | str) -> Iterator[None]:
    """BentoML refuses a Dockerfile template outside the working directory (at `bentoml build`
    from the staging folder, at containerize from a temporary copy of the bento): run those
    steps from a folder above it."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


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
        if _SHOWN.match(line):
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


# -- run -----------------------------------------------------------------------------------------
def run_args(
    cfg: ContainerConfig,
    image: str,
    port: int,
    name: str,
    detach: bool,
    env_vars: Sequence[str] = (),
    host: str | None = None,
) -> list[str]:
    """`podman run` of the image: host network, the bind address and port explicit."""
    bind = host or cfg.host
    cmd = [
        podman_binary(),
        "run",
        "--pull",
        "never",
        "--name",
        name,
        "--replace",
        "--network",
        cfg.network,
        "--stop-timeout",
        str(cfg.stop_timeout_s),
        "-e",
        f"BENTOML_HOST={bind}",
        "-e",
        f"BENTOML_PORT={port}",
    ]
    for item in env_vars:
        cmd += ["-e", item]
    cmd += ["-d"] if detach else ["--rm"]
    return [*cmd, image, "--host", bind, "--port", str(port)]


@dataclass(frozen=True)
class Stopped:
    name: str
    seconds: float
    exit_code: int | None

    @property
    def clean(self) -> bool:
        return self.exit_code == 0


def stop(cfg: ContainerConfig, name: str, env: dict[str, str], remove: bool = True) -> Stopped:
    """`podman stop` (SIGTERM, then SIGKILL after serve.container.stop_timeout_s); the exit
    code tells whether it shut down by itself."""
    podman = podman_binary()
    started = time.perf_counter()
    proc = subprocess.run(
        [podman, "stop", "-t", str(cfg.stop_timeout_s), name],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise ContainerError(f"podman stop {name} failed: {proc.stderr.strip()}")
    inspect = subprocess.run(
        [podman, "inspect", name, "--format", "{{.State.ExitCode}}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    code = int(inspect.stdout.strip()) if inspect.returncode == 0 else None
    if remove:
        subprocess.run([podman, "rm", "-f", name], env=env, capture_output=True, check=False)
    return Stopped(name, seconds, code)


def health(name: str, env: dict[str, str]) -> bool:
    """Run the image's HEALTHCHECK once (`podman healthcheck run`)."""
    proc = subprocess.run(
        [podman_binary(), "healthcheck", "run", name], env=env, capture_output=True, check=False
    )
    return proc.returncode == 0
