"""Requirements files: a node installs the application's pins only (requirements.txt); development
tools live in requirements-dev.txt, which `make setup` installs over them. Both fully pinned."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_TOOLS = {"pytest", "pytest-django", "pytest-xdist", "hypothesis", "playwright", "ruff", "polib"}
PIN = re.compile(r"([A-Za-z0-9._-]+)(\[[a-z,]+\])?==([0-9][0-9A-Za-z.+-]*)")


def pins(name: str) -> tuple[dict[str, str], list[str]]:
    """{canonical name: version} and the -r includes of a requirements file; any other line fails."""
    found, includes = {}, []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            includes.append(line[3:].strip())
            continue
        match = PIN.fullmatch(line)
        assert match, f"{name}: {line!r} is not pinned as name==version"
        key = re.sub(r"[-_.]+", "-", match[1]).lower()
        assert key not in found, f"{name}: {key} twice"
        found[key] = match[3]
    return found, includes


def test_the_application_pins_hold_no_development_tool():
    app, includes = pins("requirements.txt")
    assert includes == []
    assert not DEV_TOOLS & set(app), sorted(DEV_TOOLS & set(app))


def test_the_development_pins_add_the_tools_over_the_application_pins():
    app, _ = pins("requirements.txt")
    dev, includes = pins("requirements-dev.txt")
    assert includes == ["requirements.txt"]
    assert DEV_TOOLS <= set(dev)
    assert not set(app) & set(dev), f"pinned in both: {sorted(set(app) & set(dev))}"


def test_every_direct_dependency_is_pinned_at_its_version_in_the_matching_file():
    for source, target in (
        ("requirements.in", "requirements.txt"),
        ("requirements-dev.in", "requirements-dev.txt"),
    ):
        direct, _ = pins(source)
        full, _ = pins(target)
        assert direct, source
        assert {name: full.get(name) for name in direct} == direct, (source, target)


def test_a_node_installs_the_application_file_and_make_setup_the_development_file():
    installer = (ROOT / "deploy" / "install" / "install.sh").read_text()
    installs = [line for line in installer.splitlines() if "pip install" in line]
    assert installs and all('-r "$APP/requirements.txt"' in line for line in installs), installs
    makefile = (ROOT / "Makefile").read_text()
    stamp = next(line for line in makefile.splitlines() if line.startswith("STAMP :="))
    assert "requirements.txt" in stamp and "requirements-dev.txt" in stamp  # either change reinstalls
    assert "-r requirements-dev.txt" in makefile
