"""The registry lifecycle end to end on a real MLflow store: staged promotion with gates,
force, rollback, out-of-band moves, retention, concurrency, list/diff and the MLflow UI.

One registry is built per module and copied per test:
v1 popularity (champion), v2 ALS (stays candidate: registered with a huge margin),
v3 popularity (candidate; ties v1)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from recops.cli import app
from recops.config import compose
from recops.pipeline.stages import run_chain

from .conftest import PROJECT_ROOT, project_env, tiny_overrides
from .servers import free_port

pytestmark = pytest.mark.integration
NAME = "recops-recommender"
STRONG = {"model": "als", "model.factors": 16}
CHROMIUM = shutil.which("chromium") or next(
    (p for p in ("/usr/bin/chromium",) if Path(p).exists()), None
)
SCREENSHOT = PROJECT_ROOT / "reports" / "registry" / "ui_registered_model.png"


def use_store(mp: pytest.MonkeyPatch, folder: Path) -> str:
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
    mp.setenv("RECOPS_ROOT", str(PROJECT_ROOT))
    mp.setenv("RECOPS_ACTOR", "tester")
    mp.chdir(folder)  # MLflow puts a SQLite store's artifacts under ./mlruns
    mlflow.set_tracking_uri(uri)
    return uri


def train(folder: Path, **overrides: Any) -> dict[str, Any]:
    return run_chain(compose(tiny_overrides(folder, **overrides)))["registry"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("registry-template")
    with pytest.MonkeyPatch.context() as mp:
        use_store(mp, folder)
        try:
            assert train(folder, model="popularity")["promoted"]
            assert not train(folder, **STRONG, **{"registry.margin": 1.0})["promoted"]
            assert not train(folder, model="popularity")["promoted"]
        finally:
            mlflow.set_tracking_uri(None)
    yield folder


@dataclass
class Reg:
    """A copy of the template registry and the CLI pointed at it."""

    folder: Path
    template: Path
    client: MlflowClient

    @property
    def overrides(self) -> list[str]:
        return [
            f"paths.reports_dir={self.folder / 'reports'}",
            f"paths.cache_dir={self.template / 'cache'}",
        ]

    def cli(self, *args: str, ok: bool = True) -> str:
        result = CliRunner().invoke(app, [*args, *self.overrides])
        output = result.output
        assert (result.exit_code == 0) == ok, f"recops {' '.join(args)}:\n{output}"
        return output

    def aliases(self) -> dict[str, str]:
        return {a: str(v) for a, v in self.client.get_registered_model(NAME).aliases.items()}

    def history(self) -> list[str]:
        return json.loads(self.client.get_registered_model(NAME).tags["recops.champion_history"])

    def audit(self) -> list[dict[str, Any]]:
        path = self.folder / "reports" / "registry" / "audit.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Reg]:
    source, target = (
        sqlite3.connect(template / "mlflow.db"),
        sqlite3.connect(tmp_path / "mlflow.db"),
    )
    source.backup(target)
    source.close()
    target.close()
    use_store(monkeypatch, tmp_path)
    yield Reg(tmp_path, template, MlflowClient())
    mlflow.set_tracking_uri(None)


def test_happy_path_candidate_to_challenger_to_champion(reg: Reg) -> None:
    assert reg.aliases() == {"champion": "1", "candidate": "3"}
    refused = reg.cli("promote", "--version", "2", "--to", "champion", ok=False)
    assert "gate stage failed" in refused and "v2 is not the challenger" in refused

    out = reg.cli("promote", "--version", "2", "--to", "challenger")
    assert "promote challenger none -> v2 by " in out and "(RECOPS_ACTOR=tester)" in out
    out = reg.cli("promote", "--version", "2", "--to", "champion")
    assert "promote champion v1 -> v2 by " in out
    assert "(RECOPS_ACTOR=tester): all gates passed" in out
    assert reg.aliases() == {"champion": "2", "candidate": "3"}  # the challenger moved up
    assert reg.history() == ["1"]

    records = reg.audit()
    assert [r["action"] for r in records] == ["refused", "promote", "promote"]
    champion = records[-1]
    assert (champion["from_version"], champion["to_version"], champion["actor_override"]) == (
        "1",
        "2",
        "tester",
    )
    assert champion["actor"] == f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"
    gates = {g["name"]: g["passed"] for g in champion["gates"]}
    assert gates == dict.fromkeys(
        ["stage", "artifacts", "loads", "smoke", "metric", "segments", "coverage"], True
    )
    metric = next(g for g in champion["gates"] if g["name"] == "metric")
    assert "re-evaluated on the candidate's holdout" in metric["detail"]

    version = reg.client.get_model_version(NAME, "2")
    assert version.tags["recops.previous_champion"] == "1"
    assert "promote champion v1 -> v2" in version.tags["recops.last_move"]
    assert "| ndcg_at_10 |" in version.description and "**als**" in version.description
    run = reg.client.get_run(version.run_id)
    assert run.data.tags["registered_model_version"] == f"{NAME}/2"


def test_gate_refusal_names_the_gate_and_force_needs_a_reason(reg: Reg) -> None:
    reg.cli("promote", "-v", "2", "--to", "champion", "--force", "--reason", "skip the stage")
    reg.cli("promote", "-v", "3", "--to", "challenger")

    refused = reg.cli("promote", "-v", "3", "--to", "champion", ok=False)
    assert "refused: gate metric failed" in refused and "does not beat champion v2" in refused
    assert reg.aliases()["champion"] == "2" and reg.audit()[-1]["action"] == "refused"

    no_reason = reg.cli("promote", "-v", "3", "--to", "champion", "--force", ok=False)
    assert '--force needs --reason "why"' in no_reason

    reg.cli("promote", "-v", "3", "--to", "champion", "--force", "--reason", "A/B test won")
    assert reg.aliases()["champion"] == "3" and reg.history() == ["1", "2"]
    forced = reg.audit()[-1]
    assert forced["forced"] and forced["reason"] == "A/B test won"
    assert {g["name"]: g["passed"] for g in forced["gates"]}["metric"] is False
    tags = reg.client.get_model_version(NAME, "3").tags
    assert "(RECOPS_ACTOR=tester): A/B test won" in tags["recops.forced"]


def test_rollback_twice_goes_back_two_champions(reg: Reg) -> None:
    reg.cli("promote", "-v", "2", "--to", "champion", "--force", "--reason", "setup")
    reg.cli("promote", "-v", "3", "--to", "champion", "--force", "--reason", "setup")
    assert reg.history() == ["1", "2"]

    assert "rollback champion v3 -> v2" in reg.cli("rollback", "--reason", "bad metrics")
    assert reg.aliases()["champion"] == "2" and reg.history() == ["1"]
    assert "rollback champion v2 -> v1" in reg.cli("rollback")
    assert reg.aliases()["champion"] == "1" and reg.history() == []
    assert "no previous champion to roll back to" in reg.cli("rollback", ok=False)
    rollbacks = [r for r in reg.audit() if r["action"] == "rollback"]
    assert [(r["from_version"], r["to_version"]) for r in rollbacks] == [("3", "2"), ("2", "1")]
    assert rollbacks[0]["reason"] == "bad metrics"
    assert "recops.rolled_back_at" in reg.client.get_model_version(NAME, "3").tags


def test_rollback_works_when_the_champion_artifacts_are_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_store(monkeypatch, tmp_path)
    train(tmp_path, model="popularity")
    assert train(tmp_path, **STRONG)["promoted"]  # the register stage promotes ALS: v2
    client = MlflowClient()
    assert json.loads(client.get_registered_model(NAME).tags["recops.champion_history"]) == ["1"]
    model_id = client.get_model_version(NAME, "2").source.removeprefix("models:/")
    location = client.get_logged_model(model_id).artifact_location.removeprefix("file://")
    shutil.rmtree(Path(location).parent)
    with pytest.raises(Exception):  # noqa: B017 - the champion cannot be loaded any more
        mlflow.pyfunc.load_model(f"models:/{NAME}/2")

    result = CliRunner().invoke(app, ["rollback", f"paths.reports_dir={tmp_path / 'reports'}"])
    assert result.exit_code == 0, result.output
    assert "rollback champion v2 -> v1" in result.output
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    mlflow.set_tracking_uri(None)


def test_concurrent_promotes_leave_one_winner(reg: Reg) -> None:
    reg.cli("promote", "-v", "2", "--to", "challenger")
    cmd = ["recops", "promote", "--version", "2", "--to", "champion", *reg.overrides]
    procs = [
        subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=project_env(reg.folder, RECOPS_ACTOR=f"proc-{i}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outcomes = [(p.wait(timeout=180), p.communicate()) for p in procs]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 1], outcomes
    loser = next(err for code, (_, err) in outcomes if code == 1)
    clear = (
        "champion changed from v1 to v2 while you were promoting v2",
        "v2 is already the champion",
        "registry is locked by",
    )
    assert any(message in loser for message in clear), loser
    assert reg.aliases() == {"champion": "2", "candidate": "3"} and reg.history() == ["1"]
    moves = [r for r in reg.audit() if r["action"] == "promote" and r["alias"] == "champion"]
    assert len(moves) == 1


def test_a_champion_moved_during_the_gates_makes_the_promotion_fail(
    reg: Reg, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recops.registry import lifecycle

    reg.cli("promote", "-v", "2", "--to", "challenger")
    cfg = compose(reg.overrides)
    real_gates = lifecycle.run_gates

    def gates_while_another_process_promotes(names: list[str], ctx: Any) -> Any:
        monkeypatch.setattr(lifecycle, "run_gates", real_gates)  # only the first call
        results = real_gates(names, ctx)
        lifecycle.Registry(cfg).promote("3", "champion", force=True, reason="the other one")
        return results

    monkeypatch.setattr(lifecycle, "run_gates", gates_while_another_process_promotes)
    with pytest.raises(lifecycle.RegistryError, match="champion changed from v1 to v3 while"):
        lifecycle.Registry(cfg).promote("2", "champion")
    assert reg.aliases()["champion"] == "3" and reg.history() == ["1"]


def test_an_alias_moved_in_the_ui_is_audited_on_the_next_command(reg: Reg) -> None:
    reg.client.set_registered_model_alias(NAME, "champion", "2")  # what the UI does
    reg.client.delete_registered_model_alias(NAME, "candidate")
    reg.cli("registry", "list")
    oob = [r for r in reg.audit() if r["action"] == "out_of_band"]
    assert [(r["alias"], r["from_version"], r["to_version"]) for r in oob] == [
        ("candidate", "3", None),
        ("champion", "1", "2"),
    ]
    assert {r["actor"] for r in oob} == {"mlflow-ui/unknown"}
    assert reg.history() == ["1"]
    assert (
        "out_of_band champion v1 -> v2"
        in reg.client.get_model_version(NAME, "2").tags["recops.last_move"]
    )
    reg.cli("registry", "list")  # recorded once
    assert len([r for r in reg.audit() if r["action"] == "out_of_band"]) == 2
    assert "rollback champion v2 -> v1" in reg.cli("rollback")


def test_prune_keeps_protected_versions_and_rollback_skips_archived(reg: Reg) -> None:
    reg.cli("promote", "-v", "2", "--to", "champion", "--force", "--reason", "setup")
    plan = reg.cli("registry", "prune", "--keep", "0", "--dry-run")
    assert "keep: recent champion" in plan and "would archive" not in plan

    out = reg.cli("registry", "prune", "--keep", "0", "registry.keep_champions=0")
    assert "archived" in out
    assert "recops.archived" in reg.client.get_model_version(NAME, "1").tags
    assert {v: "recops.archived" in reg.client.get_model_version(NAME, v).tags for v in "23"} == {
        "2": False,
        "3": False,
    }
    archive = reg.audit()[-1]
    assert archive["action"] == "archive" and "ndcg_at_10" in archive["details"]["metrics"]
    assert "v1" not in reg.cli("registry", "list") and "archived" in reg.cli(
        "registry", "list", "--all"
    )

    refused = reg.cli("rollback", ok=False)
    assert "no previous champion to roll back to (skipped archived/deleted: 1)" in refused
    reg.cli("registry", "restore", "1")
    assert "rollback champion v2 -> v1" in reg.cli("rollback")


def test_list_and_diff_show_versions_and_params(reg: Reg) -> None:
    listing = reg.cli("registry", "list")
    for text in ("v1", "v2", "v3", "@champion", "@candidate", "als", "popularity", "ndcg_at_10"):
        assert text in listing
    diff = reg.cli("registry", "diff", "1", "2")
    assert "model.factors" in diff and "recops.models.als.ALSModel" in diff
    assert "identical not shown" in diff and "split.test_fraction" not in diff
    assert "ndcg_at_10" in diff and "v2 − v1" in diff
    assert "split.test_fraction" in reg.cli("registry", "diff", "champion", "v2", "--all")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
def test_mlflow_ui_shows_the_model_with_its_aliases(reg: Reg, tmp_path: Path) -> None:
    reg.cli("promote", "-v", "2", "--to", "challenger")
    reg.cli("promote", "-v", "2", "--to", "champion")
    reg.cli("promote", "-v", "3", "--to", "challenger")
    port = free_port()
    env = project_env(reg.folder)
    ui = subprocess.Popen(
        ["mlflow", "ui", "--backend-store-uri", env["MLFLOW_TRACKING_URI"], "--host",
         "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/health", timeout=120)
        url = f"http://127.0.0.1:{port}/#/models/{NAME}"
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        chromium(tmp_path, f"--screenshot={SCREENSHOT}", url)
        dom = chromium(tmp_path, "--dump-dom", url)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
    assert SCREENSHOT.stat().st_size > 10_000
    assert NAME in dom and "champion" in dom and "challenger" in dom and "candidate" in dom


RUNS_SCREENSHOT = PROJECT_ROOT / "reports" / "registry" / "ui_runs_view.png"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make browser)")
def test_recops_ui_opens_the_runs_view_with_the_dataset(reg: Reg, tmp_path: Path) -> None:
    """`recops ui` starts the UI and prints the experiment's Model-training runs view, which
    lists the runs with their data snapshot in the Dataset column."""
    experiment = reg.client.get_experiment_by_name("recops")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    run = reg.client.search_runs([experiment.experiment_id], max_results=1)[0]
    (dataset,) = [d.dataset for d in run.inputs.dataset_inputs]
    assert dataset.digest == run.data.tags["data_snapshot"][:36]
    port = free_port()
    cmd = ["recops", "ui", "--port", str(port), *reg.overrides]
    errors = tmp_path / "ui.err"
    with errors.open("w") as err:
        ui = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env=project_env(reg.folder), stdout=subprocess.PIPE,
            stderr=err, text=True, start_new_session=True,
        )  # fmt: skip
    try:
        assert ui.stdout is not None
        url = ui.stdout.readline().strip()
        assert url, errors.read_text()[-3000:]
        expected = f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}"
        assert url == f"{expected}?workflowType=machine_learning"
        RUNS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        chromium(tmp_path, "--virtual-time-budget=15000", f"--screenshot={RUNS_SCREENSHOT}", url)
        dom = chromium(tmp_path, "--virtual-time-budget=15000", "--dump-dom", url)
    finally:
        os.killpg(ui.pid, signal.SIGINT)  # recops ui stops the UI's process group
        ui.wait(timeout=60)
    assert RUNS_SCREENSHOT.stat().st_size > 10_000
    assert run.info.run_name in dom  # the runs table, not the GenAI overview
    assert dataset.name in dom and dataset.digest[:8] in dom  # the Dataset column
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


def wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not come up in {timeout} s")


def chromium(tmp_path: Path, *args: str) -> str:
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
        "--virtual-time-budget=8000", "--window-size=1400,1300", *args,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
