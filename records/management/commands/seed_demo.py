import json
import random
import secrets
import time

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.roles import Role
from accounts.services import create_user
from records.demo import demo_patient, write_demo_patient
from records.demo_bulk import write_demo_patients
from records.models import Patient


class Command(BaseCommand):
    help = "Create deterministic synthetic clinic data (and demo users, if there are none)."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=50)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--no-users", action="store_true", help="do not create demo users")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing if the node has patients already"
        )
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--bulk",
            type=int,
            default=0,
            metavar="N",
            help="write N patients per transaction with one ledger append (records/demo_bulk.py)",
        )

    def handle(self, *args, **options):
        patients, seed, as_json = options["patients"], options["seed"], options["json"]
        if patients < 0 or patients > 1_000_000:
            raise CommandError("--patients must be between 0 and 1,000,000", returncode=2)
        bulk = options["bulk"]
        if bulk < 0 or bulk > 10_000:
            raise CommandError("--bulk must be between 0 and 10,000 patients per batch", returncode=2)
        if options["if_empty"] and Patient.objects.exists():
            if not as_json:
                self.stdout.write("the node has patients already: not seeding")
            return
        passwords = {}
        if not options["no_users"] and not User.objects.exists():
            for role in Role:
                password = secrets.token_urlsafe(12)
                create_user(username=f"demo_{role.value}", role=role.value, password=password, validate=False)
                passwords[f"demo_{role.value}"] = password
        rng = random.Random(seed)
        started = time.perf_counter()
        encounters = 0
        pending = []
        for number in range(patients):
            person = demo_patient(rng)
            encounters += len(person.encounters)
            if bulk:
                pending.append(person)
                if len(pending) == bulk or number + 1 == patients:
                    write_demo_patients(pending)
                    pending = []
            else:
                write_demo_patient(person)
            if not as_json and patients >= 1000 and (number + 1) % 1000 == 0:
                self.stderr.write(f"  {number + 1}/{patients} patients")
        elapsed = time.perf_counter() - started
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "patients": patients,
                        "encounters": encounters,
                        "seed": seed,
                        "seconds": round(elapsed, 2),
                        "users": passwords,
                    },
                    sort_keys=True,
                )
            )
            return
        self.stdout.write(
            f"seeded {patients} patients with {encounters} encounters in {elapsed:.1f}s (seed {seed})"
        )
        if passwords:
            self.stdout.write("demo users (passwords are shown once; keep them):")
            for username, password in passwords.items():
                self.stdout.write(f"  {username:18} {password}")
