"""`search ask "QUESTION" --user USERNAME [--json]`, `search ask --file FILE --user U` (one question a
line, one JSON object a line, the model loaded once), and `search reindex` (with a progress bar).
Exit 0 ok, 1 nothing found (ask), 2 could not run."""

import json
import sys
import time

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from records.search import services

MAX_FILE_QUESTIONS = 10_000


class Command(BaseCommand):
    help = "Ask the records a question, or rebuild the search index."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        ask = sub.add_parser("ask", help="answer a question (or each line of --file) as USERNAME")
        ask.add_argument("question", nargs="?")
        ask.add_argument("--user", required=True)
        ask.add_argument("--file", help="one question a line; prints one JSON object a line")
        ask.add_argument("--json", action="store_true")
        reindex = sub.add_parser("reindex", help="rebuild the index from every record")
        reindex.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["action"] == "reindex":
            return self._reindex(options["json"])
        return self._ask(options)

    def _reindex(self, as_json: bool) -> None:
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if not as_json:
                width = 30
                filled = width * done // max(total, 1)
                self.stderr.write(
                    f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} records", ending=""
                )

        count = services.reindex_all(progress=progress)
        seconds = time.perf_counter() - started
        if as_json:
            self.stdout.write(json.dumps({"chunks": count, "seconds": f"{seconds:.1f}"}, sort_keys=True))
        else:
            self.stderr.write("")
            self.stdout.write(f"indexed {count} chunks in {seconds:.1f}s")

    def _ask(self, options) -> None:
        user = User.objects.filter(username=options["user"]).first()
        if user is None or not user.is_active:
            raise CommandError(f"no active user {options['user']!r}", returncode=2)
        if bool(options["question"]) == bool(options["file"]):
            raise CommandError("give either a QUESTION or --file FILE", returncode=2)
        if options["file"]:
            return self._ask_file(user, options["file"])
        answer = self._answer(user, options["question"])
        if options["json"]:
            self.stdout.write(json.dumps(answer.as_json(), sort_keys=True, ensure_ascii=False))
        else:
            self._print(answer)
        if not answer.found:
            sys.exit(1)

    def _answer(self, user, question: str):
        try:
            return services.ask(user=user, question=question)
        except services.BadQuestion as problem:
            raise CommandError(str(problem), returncode=2) from None
        except PermissionDenied:
            raise CommandError(f"{user.username}'s role may not search the records", returncode=2) from None

    def _ask_file(self, user, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as handle:
                lines = [line.strip() for line in handle if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {path}: {error}", returncode=2) from None
        if len(lines) > MAX_FILE_QUESTIONS:
            raise CommandError(f"at most {MAX_FILE_QUESTIONS} questions a file", returncode=2)
        for line in lines:  # a bad line is reported on its own line; the others are still answered
            try:
                out = services.ask(user=user, question=line).as_json()
            except services.BadQuestion as problem:
                out = {"question": line[:500], "error": str(problem)}
            except PermissionDenied:
                raise CommandError(
                    f"{user.username}'s role may not search the records", returncode=2
                ) from None
            self.stdout.write(json.dumps(out, sort_keys=True, ensure_ascii=False))

    def _print(self, answer) -> None:
        if not answer.found:
            self.stdout.write("not found in the records")
            return
        for number, passage in enumerate(answer.passages, start=1):
            mark = "verified" if passage.verified else "NOT VERIFIED"
            where = f"patient {passage.patient_id} record {passage.record_id}"
            self.stdout.write(f"{number}. {passage.date} {passage.kind} {where}")
            self.stdout.write(f"   ledger entry {passage.origin}#{passage.entry_index} ({mark})")
            for sentence in passage.sentences:
                self.stdout.write(f"   {'>> ' if sentence.matched else '   '}{sentence.text}")
