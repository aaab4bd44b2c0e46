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
        token = sub.add_parser("token", help="issue an API token (Authorization: Bearer) acting as USERNAME")
        token.add_argument("username")
        token.add_argument("--name", default="", help="what the token is for")
        token.add_argument("--revoke", action="store_true", help="revoke every token of USERNAME instead")
        token.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["action"] == "token":
            return self._token(options)
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

    def _token(self, options):
        from accounts.models import User
        from records.fhir.tokens import TokenError, issue_token, revoke_tokens

        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}", returncode=2)
        if options["revoke"]:
            count = revoke_tokens(user=user)
            result = {"ok": True, "username": user.username, "revoked": count}
            text = f"revoked {count} token(s) of {user.username}"
        else:
            try:
                token = issue_token(user=user, name=options["name"])
            except TokenError as error:
                raise CommandError(str(error), returncode=2) from None
            result = {"ok": True, "username": user.username, "role": user.role, "token": token}
            text = f"token for {user.username} ({user.role}), shown once:\n{token}"
        self.stdout.write(json.dumps(result) if options["json"] else text)
