"""Run the SiliconHealth systemd units where there is no systemd (a container, a chroot).

    run_units.py start|stop|status [--units DIR] [--log-dir DIR] [--run-dir DIR]

It reads the installed unit files and does what systemd would do with the few keys they use:
EnvironmentFile=, Environment=, WorkingDirectory=, User=, Group=, UMask=, ExecStart= (in the
background, logging to a file) and ExecStartPost= (waited for: the health probe). Resource limits and
sandboxing need systemd; without it they are not applied, and `start` says so. Standard library only.
"""

import argparse
import os
import pwd
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

MAX_UNIT_BYTES = 64 * 1024
TARGET = "siliconhealth.target"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class UnitError(ValueError):
    """A unit or environment file this runner cannot read; the message names the file and line."""


def parse_unit(text: str, *, source: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values in order (keys like ExecStartPost= may repeat)."""
    if len(text.encode()) > MAX_UNIT_BYTES:
        raise UnitError(f"{source}: larger than {MAX_UNIT_BYTES} bytes")
    if "\0" in text:
        raise UnitError(f"{source}: contains a NUL byte")
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):  # a continued line, joined with a space as systemd does
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not re.fullmatch(r"\[[A-Za-z]+\]", line):
                raise UnitError(f"{source}:{number}: bad section header {line!r}")
            current = sections.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        if current is None:
            raise UnitError(f"{source}:{number}: {key!r} is outside any section")
        if not equals or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key.strip()):
            raise UnitError(f"{source}:{number}: not a Key=value line: {line[:80]!r}")
        current.setdefault(key.strip(), []).append(value.strip())
    if pending:
        raise UnitError(f"{source}: ends inside a continued line")
    return sections


def parse_environment_file(text: str, *, source: str) -> dict[str, str]:
    """systemd's EnvironmentFile=: KEY=VALUE lines, comments, optional quotes around the value."""
    values = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        if match is None:
            raise UnitError(f"{source}:{number}: not a KEY=value line")
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def expand_command(line: str, environment: dict[str, str]) -> tuple[list[str], bool]:
    """An Exec*= line -> (argv, failure ignored). ${VAR} is one word, $VAR splits, %% is %."""
    ignore = line.startswith("-")
    line = line.lstrip("-@+!:")
    if re.search(r"%[^%]", line.replace("%%", "")):
        raise UnitError(f"unsupported systemd specifier in {line!r}")
    argv = []
    for word in shlex.split(line.replace("%%", "%")):
        whole = _VARIABLE.fullmatch(word)
        if whole and whole.group(2):
            argv.extend(environment.get(whole.group(2), "").split())
        else:
            argv.append(_VARIABLE.sub(lambda m: environment.get(m.group(1) or m.group(2), ""), word))
    if not argv or not argv[0].startswith("/"):
        raise UnitError(f"the command of {line!r} must be an absolute path")
    return argv, ignore


class Service:
    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        self.unit = parse_unit(path.read_text(encoding="utf-8"), source=str(path))
        self.service = self.unit.get("Service", {})

    def one(self, key: str, default: str = "") -> str:
        return self.service.get(key, [default])[-1]

    def environment(self) -> dict[str, str]:
        environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        for name in self.service.get("EnvironmentFile", []):
            optional = name.startswith("-")
            path = Path(name.lstrip("-"))
            if optional and not path.exists():
                continue
            environment.update(parse_environment_file(path.read_text(encoding="utf-8"), source=str(path)))
        for line in self.service.get("Environment", []):
            for assignment in shlex.split(line):
                key, _, value = assignment.partition("=")
                environment[key] = value
        return environment

    def process_options(self) -> dict:
        options: dict = {"cwd": self.one("WorkingDirectory", "/") or "/"}
        user = self.one("User")
        if user:
            entry = pwd.getpwnam(user)
            options.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
            options["env_home"] = entry.pw_dir
        if self.one("UMask"):
            options["umask"] = int(self.one("UMask"), 8)
        return options


def _wanted_services(units: Path) -> list[Path]:
    target = parse_unit((units / TARGET).read_text(encoding="utf-8"), source=TARGET)
    wanted = [w for line in target.get("Unit", {}).get("Wants", []) for w in line.split()]
    return [units / name for name in wanted if name.endswith(".service")]


def start(units: Path, log_dir: Path, run_dir: Path) -> int:
    log_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    for path in _wanted_services(units):
        service = Service(path)
        pid_file = run_dir / f"{service.name}.pid"
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            print(f"{service.name}: already running")
            continue
        environment = service.environment()
        options = service.process_options()
        environment["HOME"] = options.pop("env_home", "/root")
        argv, _ = expand_command(service.one("ExecStart"), environment)
        log = open(log_dir / f"{service.name}.log", "ab")  # noqa: SIM115 - the child keeps it open
        child = subprocess.Popen(
            argv, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **options
        )
        pid_file.write_text(str(child.pid))
        for line in service.service.get("ExecStartPost", []):
            post, ignore = expand_command(line, environment)
            result = subprocess.run(post, env=environment, capture_output=True, text=True, **options)
            if result.returncode != 0 and not ignore:
                print(f"{service.name}: {' '.join(post)} failed: {result.stderr.strip()}", file=sys.stderr)
                status = 1
        print(f"{service.name}: started (pid {child.pid}, log {log_dir / (service.name + '.log')})")
    print("note: without systemd, MemoryMax=, CPUQuota=, CPUWeight= and the sandboxing keys are not applied")
    return status


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0]:  # our own child (started by this process) that has exited
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(run_dir: Path) -> int:
    pids = {}
    for pid_file in sorted(run_dir.glob("*.pid")):
        pid = int(pid_file.read_text())
        if _alive(pid):
            os.killpg(pid, signal.SIGTERM)
            pids[pid_file] = pid
        else:
            pid_file.unlink()
    deadline = time.monotonic() + 60
    while pids and time.monotonic() < deadline:
        for pid_file, pid in list(pids.items()):
            if not _alive(pid):
                pid_file.unlink()
                del pids[pid_file]
        time.sleep(0.5)
    for pid_file, pid in pids.items():
        os.killpg(pid, signal.SIGKILL)
        pid_file.unlink()
        print(f"{pid_file.stem}: killed after 60 s", file=sys.stderr)
    return 0


def status(run_dir: Path) -> int:
    down = 0
    for pid_file in sorted(run_dir.glob("*.pid")):
        alive = _alive(int(pid_file.read_text()))
        down += not alive
        print(f"{pid_file.stem}: {'running' if alive else 'dead'}")
    return 1 if down else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--units", type=Path, default=Path("/etc/systemd/system"))
    parser.add_argument("--log-dir", type=Path, default=Path("/var/log/siliconhealth"))
    parser.add_argument("--run-dir", type=Path, default=Path("/run/siliconhealth"))
    options = parser.parse_args(argv)
    try:
        if options.action == "start":
            return start(options.units, options.log_dir, options.run_dir)
        if options.action == "stop":
            return stop(options.run_dir)
        return status(options.run_dir)
    except (UnitError, OSError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
