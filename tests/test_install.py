"""The container build, performed here (no Docker daemon on these machines): the build
context filtered by .dockerignore, the Dockerfile's own install steps into a fresh
virtualenv, and the installed `quartchat serve` started from an empty directory."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from quartchat.config.settings import Settings
from tests.support import (
    PROJECT_ROOT,
    RunningServer,
    create_postgres_database,
    create_room,
    create_user,
    drop_postgres_database,
    free_port,
    receive_messages,
)
from tests.support.image import (
    Installed,
    Instruction,
    copy_build_context,
    dockerfile_instructions,
    dockerignore_rules,
    ignored,
    install_steps,
    start_installed,
)

INSTALL_SCRIPT = "scripts/docker-install"
# Each step downloads or builds for minutes at worst on a loaded 2-core machine, and the
# first test to need the install waits for both.
INSTALL_TIMEOUT = 600
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3 * INSTALL_TIMEOUT)]


DOCKERFILE = PROJECT_ROOT / "Dockerfile"


def instructions() -> list[Instruction]:
    return dockerfile_instructions(DOCKERFILE)


@pytest.fixture(scope="module", name="installed")
def _installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """One install for the module: the Dockerfile's COPY and install steps, in its order,
    from a copy of the context filtered by .dockerignore (so the dependencies step sees
    only what the image has copied by then)."""
    root = tmp_path_factory.mktemp("image")
    context, build = root / "context", root / "src"
    copy_build_context(PROJECT_ROOT, context)
    build.mkdir()
    installed = Installed(venv=root / "venv")
    for step in instructions():
        if step.keyword == "COPY":
            *sources, target = step.arguments.split()
            for source in sources:
                copy_into(context / source, build, target)
        elif step.keyword == "RUN" and INSTALL_SCRIPT in step.arguments:
            result = subprocess.run(
                ["sh", "-c", step.arguments],
                cwd=build,
                env=installed.env(),
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
            )
            assert result.returncode == 0, f"{step}:\n{result.stdout}\n{result.stderr}"
    return installed


def copy_into(source: Path, workdir: Path, target: str) -> None:
    """Docker's COPY relative to the WORKDIR: a folder's contents into the target folder,
    a file into a folder (a target ending in `/`, or `.`) or to that name."""
    destination = workdir / target
    if source.is_dir():
        shutil.copytree(source, destination, dirs_exist_ok=True, symlinks=True)
    elif target.endswith("/") or destination.is_dir():
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination / source.name)
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


@pytest.fixture(scope="module", name="server")
def _server(
    installed: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    server = start_installed(installed, tmp_path_factory.mktemp("run") / "empty", DOCKERFILE)
    yield server
    server.stop()


def test_dockerfile_installs_only_through_the_tested_script() -> None:
    steps = instructions()
    assert steps[0].keyword == "FROM" and re.fullmatch(r"python:3\.11-slim\S*", steps[0].arguments)
    installs = [run for run in install_steps(steps) if "pip" in run or INSTALL_SCRIPT in run]
    assert installs == [f"{INSTALL_SCRIPT} dependencies", f"{INSTALL_SCRIPT} project"]
    copied = [step.arguments.split()[0] for step in steps if step.keyword == "COPY"]
    assert "requirements.lock" in copied
    users = [step.arguments for step in steps if step.keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert json.loads(next(s.arguments for s in steps if s.keyword == "CMD")) == [
        "quartchat",
        "serve",
    ]
    [healthcheck] = [step.arguments for step in steps if step.keyword == "HEALTHCHECK"]
    assert healthcheck.split(" CMD ", 1)[1] == '["quartchat", "health"]'


def test_dockerignore_rules_follow_docker(tmp_path: Path) -> None:
    rules = dockerignore_rules(PROJECT_ROOT / ".dockerignore")
    assert ignored(".venv/bin/python", rules)
    assert ignored("quartchat/api/blueprints/__pycache__/ws.cpython-311.pyc", rules)
    assert ignored("__pycache__/x.pyc", rules)
    assert ignored("tests/test_install.py", rules)
    assert ignored("quartchat.sqlite3", rules)
    for needed in ("quartchat/process/app.py", "requirements.lock", "hypercorn.toml", "README.md"):
        assert not ignored(needed, rules), needed

    (tmp_path / ".dockerignore").write_text("docs\n!docs/keep.md\n/*.md\n")
    rules = dockerignore_rules(tmp_path / ".dockerignore")
    assert ignored("docs/console.png", rules) and not ignored("docs/keep.md", rules)
    assert ignored("README.md", rules) and not ignored("quartchat/README.md", rules)


def test_railway_builds_the_dockerfile_and_drains_long_enough() -> None:
    railway = json.loads((PROJECT_ROOT / "railway.json").read_text())
    assert railway["build"]["builder"] in {"RAILPACK", "DOCKERFILE"}  # all Railway accepts
    assert (PROJECT_ROOT / railway["build"]["dockerfilePath"]).is_file()
    deploy = railway["deploy"]
    assert deploy["healthcheckPath"] == "/health"
    assert deploy["preDeployCommand"] == ["quartchat migrate"]
    # SIGTERM to SIGKILL: the sockets' close timeout, then Hypercorn's grace period.
    hypercorn = tomllib.loads((PROJECT_ROOT / "hypercorn.toml").read_text())
    shutdown = Settings().close_timeout + hypercorn["graceful_timeout"]
    assert isinstance(deploy["drainingSeconds"], int) and deploy["drainingSeconds"] >= 2 * shutdown


def test_compose_runs_two_instances_on_postgres_and_redis() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())
    services = compose["services"]
    instances = [s for s in services.values() if s.get("build") == "." and "ports" in s]
    assert len(instances) == 2
    read_by_config = set(
        re.findall(r'"([A-Z_]+)"', (PROJECT_ROOT / "quartchat/config/settings.py").read_text())
    )
    for instance in instances:
        assert set(instance["environment"]) <= read_by_config
        assert instance["environment"]["DATABASE_URL"].startswith("postgres://")
        assert instance["environment"]["REDIS_URL"].startswith("redis://")
    assert services["migrate"]["command"] == ["quartchat", "migrate"]


def test_packages_are_all_listed_for_the_wheel() -> None:
    on_disk = {
        ".".join(init.parent.relative_to(PROJECT_ROOT).parts)
        for init in (PROJECT_ROOT / "quartchat").rglob("__init__.py")
    }
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'^\s+"(quartchat[\w.]*)",$', pyproject, re.MULTILINE))
    assert on_disk <= listed


async def test_installed_server_serves_the_console_and_static_files(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
        for path in ("/", "/console"):
            page = await http.get(path)
            assert page.status_code == 200, page.text
            assert page.headers["content-type"].startswith("text/html")
            assert "console.js" in page.text
        script = await http.get("/static/console.js")
        assert script.status_code == 200 and "quartchat.js" in script.text
        client = await http.get("/static/quartchat.js")
        assert client.status_code == 200 and "WebSocket" in client.text
        assert client.headers["content-type"].startswith("text/javascript")
        version = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]
        versioned = await http.get(f"/static/v{version}/quartchat.js")
        assert versioned.status_code == 200 and versioned.content == client.content
        assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
        for packed in ("package.json", "quartchat.d.ts", "react.js", "react.d.ts"):
            assert (await http.get(f"/static/{packed}")).status_code == 200, packed
        style = await http.get("/static/console.css")
        assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
        assert (await http.get("/docs")).status_code == 200
        openapi = await http.get("/openapi.json")
        assert "/rooms/{room_id}/messages" in openapi.json()["paths"]


async def test_installed_server_applies_hypercorn_toml(server: RunningServer) -> None:
    """hypercorn.toml's 64 KiB frame limit: a 2 MiB frame is refused with close 1009."""
    async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
        room, user = await create_room(http), await create_user(http)
    url = f"{server.ws_url}/ws/{room['id']}/{user['id']}"
    async with connect(url, open_timeout=15, max_size=None) as ws:
        # The server stops reading mid-frame, so the send may never finish.
        sending = asyncio.create_task(ws.send(json.dumps({"content": "x" * (2 * 1024 * 1024)})))
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(60):
                while True:
                    await ws.recv()
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_installed_server_round_trips_a_message(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=15) as http:
        room, user = await create_room(http), await create_user(http)
        url = f"{server.ws_url}/ws/{room['id']}/{user['id']}"
        async with connect(url, open_timeout=15) as ws:
            await ws.send(json.dumps({"content": "from the image"}))
            [message] = await receive_messages(ws, 1, timeout=15)
            assert message["content"] == "from the image"
        stored = (await http.get(f"/rooms/{room['id']}/messages")).json()
        assert [m["content"] for m in stored] == ["from the image"]


def test_healthcheck_command_reports_the_server(
    installed: Installed, server: RunningServer
) -> None:
    [healthcheck] = [step.arguments for step in instructions() if step.keyword == "HEALTHCHECK"]
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    healthy = subprocess.run(
        command, env=installed.env(PORT=str(server.port)), capture_output=True, timeout=30
    )
    assert healthy.returncode == 0, healthy.stderr
    down = subprocess.run(
        command,
        env=installed.env(PORT=str(free_port())),  # a port nothing listens on
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert down.returncode == 1 and "/health" in down.stderr


def test_missing_file_is_a_clear_startup_error(installed: Installed, tmp_path: Path) -> None:
    [template] = installed.venv.glob(
        "lib/python*/site-packages/quartchat/project/templates/console.html"
    )
    hidden = template.with_suffix(".hidden")
    template.rename(hidden)
    try:
        result = subprocess.run(
            ["quartchat", "serve"],
            cwd=tmp_path,
            env=installed.env(PORT="0", HOST="127.0.0.1"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        hidden.rename(template)
    assert result.returncode != 0
    assert str(template) in result.stdout and "database" not in result.stdout


async def test_pre_deploy_command_migrates_postgres(installed: Installed, tmp_path: Path) -> None:
    """railway.json's pre-deploy step, run by the installed package: the schema of an
    empty PostgreSQL database is created (the migrations travel in the wheel)."""
    [command] = json.loads((PROJECT_ROOT / "railway.json").read_text())["deploy"][
        "preDeployCommand"
    ]
    database_url = await create_postgres_database()
    try:
        env = installed.env(DATABASE_URL=database_url)
        migrated = subprocess.run(
            ["sh", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stderr
        connection = await asyncpg.connect(database_url)
        try:
            tables = {
                row["tablename"]
                for row in await connection.fetch("SELECT tablename FROM pg_tables")
            }
        finally:
            await connection.close()
        assert {"rooms", "users", "messages"} <= tables
    finally:
        await drop_postgres_database(database_url)
