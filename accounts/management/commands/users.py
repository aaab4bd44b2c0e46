import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import Role
from accounts.services import AccountError, create_user


class Command(BaseCommand):
    help = "Manage user accounts: `users add USERNAME --role ROLE --password-stdin`."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="create an account with a role")
        add.add_argument("username")
        add.add_argument("--role", required=True, choices=[r.value for r in Role])
        add.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        add.add_argument("--language", default="en", choices=["en", "fr", "sw"])
        add.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if not options["password_stdin"]:
            raise CommandError("give the password on standard input with --password-stdin", returncode=2)
        password = sys.stdin.readline().rstrip("\r\n")
        try:
            user = create_user(
                username=options["username"],
                role=options["role"],
                password=password,
                language=options["language"],
            )
        except ValidationError as error:
            raise CommandError("password refused: " + " ".join(error.messages), returncode=2) from None
        except AccountError as error:
            raise CommandError(str(error), returncode=2) from None
        if options["json"]:
            self.stdout.write(json.dumps({"ok": True, "username": user.username, "role": user.role}))
        else:
            self.stdout.write(f"created {user.username} ({user.role})")
