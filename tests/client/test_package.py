"""`static/` as the npm package `quartchat`: `npm pack` makes the tarball a Next.js app
installs, its module is byte for byte what the server serves, and its exports (the
module, `quartchat/react`, and their types) resolve for TypeScript as installed."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest

from tests.api.blueprints.test_client import server_version
from tests.client.test_types import TSC
from tests.support import PROJECT_ROOT

pytestmark = pytest.mark.browser  # needs Node.js and its npm tools (tests/support/tiers.py)

STATIC = PROJECT_ROOT / "static"
PACKED = {"package.json", "quartchat.js", "quartchat.d.ts", "react.js", "react.d.ts"}


def npm_pack(destination: Path) -> Path:
    """`npm pack` in static/, the tarball written to `destination`."""
    npm = shutil.which("npm")
    assert npm, "install npm first (scripts/test does)"
    result = subprocess.run(
        [npm, "pack", "--json", "--pack-destination", str(destination)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=STATIC,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    filename: str = json.loads(result.stdout)[0]["filename"]
    return destination / filename


@pytest.fixture(scope="module", name="tarball")
def _tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return npm_pack(tmp_path_factory.mktemp("pack"))


def packed_files(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as archive:
        files = {}
        for member in archive.getmembers():
            extracted = archive.extractfile(member)
            assert extracted is not None, member.name
            files[member.name.removeprefix("package/")] = extracted.read()
        return files


def test_npm_pack_makes_a_tarball_of_the_client_and_its_types(tarball: Path) -> None:
    assert tarball.name == f"quartchat-{server_version()}.tgz"
    files = packed_files(tarball)
    assert set(files) == PACKED
    manifest = json.loads(files["package.json"])
    assert manifest["version"] == server_version()
    assert manifest["exports"]["."] == {"types": "./quartchat.d.ts", "default": "./quartchat.js"}
    assert manifest["exports"]["./react"] == {"types": "./react.d.ts", "default": "./react.js"}
    for name in PACKED - {"package.json"}:
        assert files[name] == (STATIC / name).read_bytes(), name


async def test_the_served_module_is_the_packed_one(tarball: Path, http: httpx.AsyncClient) -> None:
    packed = packed_files(tarball)["quartchat.js"]
    served = await http.get("/static/quartchat.js")
    versioned = await http.get(f"/static/v{server_version()}/quartchat.js")
    assert served.content == packed
    assert versioned.content == packed


USAGE = """
import { Room, type Message } from "quartchat";
import { useRoom, type SendResult, type UseRoom } from "quartchat/react";

export function Chat(): string {
  const chat: UseRoom = useRoom({
    url: "https://chat.example.com",
    roomId: "r",
    userId: "u",
    token: async () => "a token, asked again whenever the latest render's function is needed",
    maxMessages: 1000,
  });
  void chat.send("hi").then((result: SendResult) => {
    if (result.ok) {
      const stored: Message = result.message;
      return stored.seq;
    }
    return result.error.code;
  });
  void chat.loadOlder(20).then((count: number) => count);
  const typed: boolean = chat.typing();
  const problem: string | undefined = chat.error?.code;
  void [typed, problem, new Room({ url: "http://x", roomId: "r", userId: "u" })];
  return chat.messages.map((m) => m.content).join("\\n") + chat.status + chat.typingUser;
}
"""

WRONG = """
import { useRoom } from "quartchat/react";

const chat = useRoom({ url: "http://x", roomId: "r" });
void chat.send("hi").then((result) => result.message.seq);
"""


def installed_project(tmp_path: Path, tarball: Path, source: str) -> Path:
    """A project with the tarball unpacked as node_modules/quartchat (what `npm install`
    of it puts there: the package has no dependencies) and one TypeScript file."""
    modules = tmp_path / "node_modules"
    modules.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(modules, filter="data")
    (modules / "package").rename(modules / "quartchat")
    (tmp_path / "chat.ts").write_text(source)
    return tmp_path / "chat.ts"


def tsc_in(project: Path, file: Path) -> subprocess.CompletedProcess[str]:
    options = ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022"]
    options += ["--moduleResolution", "bundler", "--lib", "es2022,dom"]
    assert TSC.exists(), "install TypeScript first (scripts/test does, into .tools/)"
    return subprocess.run(
        [str(TSC), *options, str(file)], capture_output=True, text=True, timeout=120, cwd=project
    )


def test_the_installed_package_type_checks_through_its_exports(
    tarball: Path, tmp_path: Path
) -> None:
    good = installed_project(tmp_path / "good", tarball, USAGE)
    result = tsc_in(good.parent, good)
    assert result.returncode == 0, result.stdout + result.stderr
    wrong = installed_project(tmp_path / "wrong", tarball, WRONG)
    result = tsc_in(wrong.parent, wrong)
    assert result.returncode != 0
    assert "userId" in result.stdout, result.stdout
    assert "'message' does not exist" in result.stdout, result.stdout
