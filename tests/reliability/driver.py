"""The clinicians' load driver: N logged-in users on loopback reading charts, registering patients and
recording encounters until a deadline; one thread each, httpx, no redirects followed.

A write counts as acknowledged only when the server answered it with the redirect to the chart; each
acknowledged write is logged (fsynced) so that `missing_acks` can demand every one afterwards. Errors
are counted per request type with a few samples; nothing is retried in place (the next action simply
goes on), so the error figure is the number of clinician-visible failures.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import statistics
import threading
import time
from pathlib import Path

import httpx

from .seeding import CLINICIANS, PASSWORD

logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the log
CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
CHART_LOCATION = re.compile(r"/patients/([0-9a-f-]{36})/$")
MIX = (("chart_read", 0.70), ("register_patient", 0.15), ("record_encounter", 0.15))
CHECK_ACKS = """
import json
import logging
from records.models import Encounter, Patient
acks = [json.loads(line) for line in open({path!r}) if line.strip()]
patients = [a["id"] for a in acks if a["kind"] == "patient"]
reasons = [a["reason"] for a in acks if a["kind"] == "encounter"]
found_p = set(str(p) for p in Patient.objects.filter(pk__in=patients).values_list("pk", flat=True))
found_e = set(Encounter.objects.filter(reason__in=reasons).values_list("reason", flat=True))
missing = [p for p in patients if p not in found_p] + [r for r in reasons if r not in found_e]
print(json.dumps({{"acknowledged": len(acks), "missing": len(missing), "missing_samples": missing[:5]}}))
"""


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


class Recorder:
    def __init__(self, acks_path: Path):
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = {name: [] for name, _ in MIX}
        self.errors: dict[str, int] = {name: 0 for name, _ in MIX} | {"login": 0}
        self.error_samples: list[str] = []
        self.acks = open(acks_path, "a")  # noqa: SIM115 - closed in close()

    def ok(self, kind: str, seconds: float, ack: dict | None = None) -> None:
        with self.lock:
            self.samples[kind].append(seconds)
            if ack is not None:
                self.acks.write(json.dumps(ack) + "\n")
                self.acks.flush()
                os.fsync(self.acks.fileno())

    def error(self, kind: str, what: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(f"{kind}: {what}"[:300])

    def close(self) -> None:
        self.acks.close()

    def summary(self, seconds: float) -> dict:
        per_type = {}
        total = 0
        for kind, values in self.samples.items():
            ordered = sorted(v * 1000 for v in values)
            total += len(ordered)
            per_type[kind] = {
                "requests": len(ordered),
                "errors": self.errors[kind],
                "rps": round(len(ordered) / seconds, 2),
                "median_ms": round(statistics.median(ordered)) if ordered else None,
                "p95_ms": round(percentile(ordered, 0.95)) if ordered else None,
                "p99_ms": round(percentile(ordered, 0.99)) if ordered else None,
            }
        return {
            "seconds": round(seconds, 1),
            "requests": total,
            "throughput_rps": round(total / seconds, 2),
            "errors": sum(self.errors.values()),
            "login_errors": self.errors["login"],
            "error_samples": self.error_samples,
            "per_type": per_type,
        }


class Clinician:
    def __init__(self, base: str, username: str, recorder: Recorder, patients: list[str], seed: int):
        self.base, self.username, self.recorder, self.patients = base, username, recorder, patients
        self.rng = random.Random(seed)
        self.client: httpx.Client | None = None
        self.token = ""

    def login(self) -> bool:
        if self.client is not None:
            self.client.close()
        self.client = httpx.Client(base_url=self.base, timeout=30.0, follow_redirects=False)
        try:
            page = self.client.get("/accounts/login/")
            token = CSRF_FIELD.search(page.content).group(1).decode()
            answer = self.client.post(
                "/accounts/login/",
                data={"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": token},
            )
            if answer.status_code != 302 or "/accounts/login" in answer.headers.get("location", ""):
                raise RuntimeError(f"login answered {answer.status_code}")
            form = self.client.get("/patients/new/")
            self.token = CSRF_FIELD.search(form.content).group(1).decode()
            return True
        except (httpx.HTTPError, AttributeError, RuntimeError) as error:
            self.recorder.error("login", f"{type(error).__name__}: {error}")
            return False

    def act(self) -> None:
        kind = self.rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
        started = time.perf_counter()
        try:
            if kind == "chart_read":
                answer = self.client.get(f"/patients/{self.rng.choice(self.patients)}/")
                if answer.status_code != 200:
                    raise RuntimeError(f"status {answer.status_code}")
                self.recorder.ok(kind, time.perf_counter() - started)
            elif kind == "register_patient":
                marker = f"Rel{self.rng.getrandbits(48):012x}"
                answer = self.client.post(
                    "/patients/new/",
                    data={
                        "given_name": marker,
                        "family_name": "Loadtest",
                        "sex": "female",
                        "age_years": "30",
                        "village": "Reliability",
                        "confirm_new": "on",
                        "csrfmiddlewaretoken": self.token,
                    },
                )
                found = CHART_LOCATION.search(answer.headers.get("location", ""))
                if answer.status_code != 302 or not found:
                    raise RuntimeError(f"status {answer.status_code}")
                self.recorder.ok(
                    kind, time.perf_counter() - started, {"kind": "patient", "id": found.group(1)}
                )
            else:
                reason = f"rel-{self.rng.getrandbits(64):016x}"
                patient = self.rng.choice(self.patients)
                answer = self.client.post(
                    f"/patients/{patient}/encounters/new/",
                    data={
                        "kind": "outpatient",
                        "reason": reason,
                        "note": "Reliability load: routine review.",
                        "csrfmiddlewaretoken": self.token,
                    },
                )
                if answer.status_code != 302:
                    raise RuntimeError(f"status {answer.status_code}")
                self.recorder.ok(kind, time.perf_counter() - started, {"kind": "encounter", "reason": reason})
        except (httpx.HTTPError, RuntimeError) as error:
            self.recorder.error(kind, f"{type(error).__name__}: {error}")
            if isinstance(error, httpx.TransportError):
                time.sleep(0.5)  # the server is down: a person waits a moment before trying again
                self.login()

    def run(self, deadline: float, stop: threading.Event, delay: float = 0.0, think: float = 0.0) -> None:
        stop.wait(delay)  # users arrive at the spawn rate, not all in the same second
        while time.monotonic() < deadline and not stop.is_set() and not self.login():
            time.sleep(1.0)
        while time.monotonic() < deadline and not stop.is_set():
            self.act()
            if think:  # locust's wait_time = between(think / 2, think * 3 / 2): people do not click in step
                stop.wait(self.rng.uniform(think / 2, think * 3 / 2))
        if self.client is not None:
            self.client.close()


def run_clinicians(
    base: str,
    *,
    clinicians: int,
    seconds: float,
    patients: list[str],
    acks: Path,
    stop: threading.Event | None = None,
    recorder: Recorder | None = None,
    spawn_rate: float = 5.0,
    think: float = 0.0,
) -> dict:
    """Until `seconds` pass or `stop` is set; pass a recorder to read its figures while it runs.
    Users start `spawn_rate` per second (as locust ramps up); a user waits `think` seconds on average
    (uniformly between half and one and a half times it) after each answer before the next action
    (0: back to back, the harshest closed loop, which measures saturation)."""
    recorder = recorder or Recorder(acks)
    stop = stop or threading.Event()
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    threads = [
        threading.Thread(
            target=Clinician(base, f"{CLINICIANS}{n:02d}", recorder, patients, seed=n).run,
            args=(deadline, stop, n / spawn_rate, think),
        )
        for n in range(clinicians)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summary = recorder.summary(time.monotonic() - started)
    summary.update(clinicians=clinicians, spawn_rate_per_s=spawn_rate, think_seconds=think)
    recorder.close()
    return summary


def missing_acks(node, acks: Path) -> dict:
    """Every acknowledged write of the acks file, looked up in the node's database."""
    if not acks.exists():
        return {"acknowledged": 0, "missing": 0, "missing_samples": []}
    return json.loads(node.shell(CHECK_ACKS.format(path=str(acks))).strip().splitlines()[-1])
