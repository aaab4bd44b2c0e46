"""The CPU of one login: the node's Argon2id hasher against Django 5.2's PBKDF2 (1,000,000 rounds), the
hasher used before, measured in the same run.

A node home on SQLite (its own SILICONHEALTH_HOME), in-process with Django's test client: full logins
through the login form (session, django-axes, last_login), interleaved, one user per hasher; the
PBKDF2 logins run with PBKDF2 first in PASSWORD_HASHERS (as before), so that their hash is not
upgraded. Also the hashers' verify alone. CPU is this process's time (both hashers use one core).
"""

import json
import os

from .common import RESULTS, ROOT, manage, print_table, run_in_node, write_result

LOGINS = int(os.environ.get("BENCH_LOGINS", "12"))

MEASURE = r"""
import json, statistics, time
import django; django.setup()
from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher
from django.test import Client, override_settings
from accounts.models import User
from accounts.services import create_user

PASSWORD = "bench passphrase 2026"
BEFORE = ["django.contrib.auth.hashers.PBKDF2PasswordHasher", "accounts.hashers.NodeArgon2PasswordHasher"]
pbkdf2 = PBKDF2PasswordHasher()
User.objects.filter(username__startswith="bench-login-").delete()
create_user(username="bench-login-argon2", role="clinician", password=PASSWORD, validate=False)
old = create_user(username="bench-login-pbkdf2", role="clinician", password=PASSWORD, validate=False)
User.objects.filter(pk=old.pk).update(password=pbkdf2.encode(PASSWORD, pbkdf2.salt()))

def one_login(username):
    client = Client()
    cpu, wall = time.process_time(), time.perf_counter()
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD}, REMOTE_ADDR="127.0.0.9")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert response.status_code == 302, response.status_code
    return cpu, wall

samples = {"argon2id (node)": [], "pbkdf2 (before)": []}
one_login("bench-login-argon2")  # warm-up: imports, first queries
for _ in range(N):
    samples["argon2id (node)"].append(one_login("bench-login-argon2"))
    with override_settings(PASSWORD_HASHERS=BEFORE):
        samples["pbkdf2 (before)"].append(one_login("bench-login-pbkdf2"))
hashes = {name: User.objects.get(username=f"bench-login-{key}").password.split("$")[:4]
          for name, key in (("argon2id (node)", "argon2"), ("pbkdf2 (before)", "pbkdf2"))}

def verify_cpu(hasher, encoded):
    values = []
    for _ in range(N):
        started = time.process_time(); assert hasher.verify(PASSWORD, encoded); values.append(time.process_time() - started)
    return values

node = get_hasher("default")
verify = {"argon2id (node)": verify_cpu(node, node.encode(PASSWORD, node.salt())),
          "pbkdf2 (before)": verify_cpu(pbkdf2, pbkdf2.encode(PASSWORD, pbkdf2.salt()))}
ms = lambda values: round(statistics.median(values) * 1000, 1)
print(json.dumps({name: {"login_cpu_ms": ms([c for c, _ in pairs]), "login_wall_ms": ms([w for _, w in pairs]),
                         "verify_cpu_ms": ms(verify[name]), "hash": "$".join(hashes[name]), "logins": len(pairs)}
                  for name, pairs in samples.items()}))
"""


def main() -> None:
    home = RESULTS / "login-node"
    home.mkdir(parents=True, exist_ok=True)
    manage(home, "migrate", "-v", "0")
    timings = json.loads(
        run_in_node(home, f"N = {LOGINS}\n" + MEASURE, DEBUG="0", CELERY_TASK_ALWAYS_EAGER="0")
    )
    node, before = timings["argon2id (node)"], timings["pbkdf2 (before)"]
    result = {
        "logins_each": LOGINS,
        "timings": timings,
        "login_cpu_x_before": round(node["login_cpu_ms"] / before["login_cpu_ms"], 3),
        "logins_per_cpu_second": {name: round(1000 / v["login_cpu_ms"], 1) for name, v in timings.items()},
    }
    path = write_result("login", result)
    print_table(
        f"login, median of {LOGINS} each ({path.relative_to(ROOT)})",
        [("", "login CPU ms", "login wall ms", "verify CPU ms")]
        + [(name, v["login_cpu_ms"], v["login_wall_ms"], v["verify_cpu_ms"]) for name, v in timings.items()],
    )
    print(
        f"  a login costs x{result['login_cpu_x_before']} the CPU of before; logins per CPU second: "
        + ", ".join(f"{name} {n}" for name, n in result["logins_per_cpu_second"].items())
    )


if __name__ == "__main__":
    main()
