"""Containers with podman/buildah (no Docker daemon): the engine's configuration, a Python
base image from Debian packages, and running/stopping an image.

- `engine_env`: containers.conf (runc, ulimits) and storage.conf (own image store) written to
  `serve.container.config_dir`, pointed at by `CONTAINERS_CONF` / `CONTAINERS_STORAGE_CONF`.
- `build_base_image`: a Python base image from Debian packages (debootstrap + `podman import`)
  for machines that reach a Debian mirror but no container registry.
- `run_args` / `stop`: `podman run` with the bind address explicit, `podman stop` (SIGTERM,
  graceful drain) with its exit code.

Building the bento's image is `recops.serving.image`.
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

from recops.config import resolve_path
from recops.errors import ConfigError, RecopsError
from recops.serving.config import ContainerConfig

log = logging.getLogger(__name__)
ENGINES = ("buildah", "podman")
#: Build output lines worth showing live (the rest goes to the build log file).
SHOWN = re.compile(
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
    shown: Callable[[str], bool] = lambda line: bool(SHOWN.match(line)),
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
