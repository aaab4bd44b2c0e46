"""One miner connection: its state and the Stratum methods it may call.

The session never does I/O itself: it gets a `send(bytes)` and a `close()` from the server, so every
reply it produces, and every state it can reach, is plain Python to test and reason about.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from .codec import (
    DuplicateShare,
    JobNotFound,
    LowDifficultyShare,
    NotSubscribed,
    OtherError,
    ProtocolError,
    Request,
    Response,
    StratumError,
    UnauthorizedWorker,
    encode_error,
    encode_notification,
    encode_result,
    parse_line,
)
from .header import hex32, negotiate_mask, parse_hex32, parse_hex_bytes
from .jobs import Job
from .proof import make_proof
from .share import check_header, hash_to_int, target_for_difficulty, wire_difficulty
from .vardiff import Vardiff, classify

if TYPE_CHECKING:
    from collections.abc import Callable

    from .server import StratumServer

log = logging.getLogger(__name__)
MAX_NAME = 128
FALSE_ON_ERROR = {"mining.authorize", "mining.submit"}  # these answer result false with the error


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError("difficulty must be a number")
    number = float(value) if value < 1e300 else math.inf
    if not math.isfinite(number) or number <= 0:
        raise ProtocolError("difficulty must be positive and finite")
    return number


def _submitted_u32(text: str, what: str) -> int:
    try:
        return parse_hex32(text, what)
    except ValueError:
        raise OtherError(f"Invalid {what}") from None


class Session:
    def __init__(
        self,
        server: StratumServer,
        extranonce1: bytes,
        peer: str,
        send: Callable[[bytes], None],
        close: Callable[[], None],
        now: float,
    ):
        self.server = server
        self.config = server.config
        self.extranonce1 = extranonce1
        self.peer = peer
        self._send, self._close = send, close
        self.created = self.last_seen = now
        self.user_agent = ""
        self.subscribed = False
        self.active = False  # has been sent a difficulty and (when one exists) a job
        self.closed = False
        self.version_mask = 0
        self.authorized: set[str] = set()
        self.pending: dict[str, str] = {}  # worker -> password, re-asked until approved
        self.pending_since: float | None = None
        self.next_pending_poll = 0.0
        self.vardiff: Vardiff | None = None
        self.suggested: float | None = None
        self.difficulty: int | float | None = None
        # Replaced difficulties and until when shares at them still count (in-flight work).
        self.recent: deque[tuple[float, int | float]] = deque(maxlen=8)
        self.seen: dict[str, tuple[Job, set[bytes]]] = {}  # per job: hashes of accepted shares
        self.protocol_errors = 0
        self.accepted = self.rejected = 0
        self._after: list[bytes] = []
        self._close_after_reply = False
        self._handlers = {
            "mining.configure": self._configure,
            "mining.subscribe": self._subscribe,
            "mining.authorize": self._authorize,
            "mining.submit": self._submit,
            "mining.suggest_difficulty": self._suggest_difficulty,
            "mining.extranonce.subscribe": self._true,
            "mining.ping": self._pong,
        }

    # ---- plumbing -------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if not self.closed:
            self._send(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()

    async def handle_line(self, line: bytes, now: float) -> None:
        self.last_seen = now
        if not line.strip():
            return  # blank keep-alive lines are harmless
        try:
            msg = parse_line(line, self.config.max_line)
        except ProtocolError as exc:
            self._protocol_error(exc.msg_id, exc)
            return
        if isinstance(msg, Response):
            return  # answers to requests we never make; nothing to do
        await self.handle_request(msg, now)

    async def handle_request(self, req: Request, now: float) -> None:
        handler = self._handlers.get(req.method)
        try:
            if handler is None:
                raise OtherError("Unknown method")
            result = await handler(req.params, now)
        except ProtocolError as exc:
            self._protocol_error(req.id, exc, req.method)
        except StratumError as exc:
            if req.method == "mining.submit":
                self.rejected += 1
                self.server.count(f"rejected_{exc.code}")
            self.send(encode_error(req.id, exc, False if req.method in FALSE_ON_ERROR else None))
        except Exception:
            log.exception("stratum %s from %s failed", req.method, self.peer)
            self.send(encode_error(req.id, OtherError("Internal error")))
        else:
            if req.id is not None:
                self.send(encode_result(req.id, result))
        if self._after:
            after, self._after = self._after, []
            for data in after:
                self.send(data)
        if self._close_after_reply:
            self.close()

    def _later(self, data: bytes) -> None:
        """Queue a push that must follow the reply being built (set_difficulty, notify)."""
        self._after.append(data)

    def _protocol_error(self, msg_id: Any, exc: StratumError, method: str | None = None) -> None:
        self.protocol_errors += 1
        self.server.count("protocol_errors")
        self.send(encode_error(msg_id, exc, False if method in FALSE_ON_ERROR else None))
        if self.protocol_errors > self.config.max_protocol_errors:
            self.close()

    # ---- jobs and difficulty ------------------------------------------------------------------

    def _notify(self, job: Job, clean: bool) -> bytes:
        params = job.to_notify_params()
        params[-1] = clean
        return encode_notification("mining.notify", params)

    def _activate(self, now: float) -> None:
        """Once subscribed and authorized: a difficulty, then the current job with clean_jobs (a new
        connection has no work of ours to keep: after a restart or reconnect, start afresh)."""
        if self.active or not self.subscribed or not self.authorized:
            return
        self.active = True
        self._later(encode_notification("mining.set_difficulty", [wire_difficulty(self.difficulty)]))
        job = self.server.current_job()
        if job is not None:
            self._later(self._notify(job, True))

    def _set_difficulty(self, new: int | float, now: float) -> None:
        # Shares already in flight were found at the old difficulty: honour it for a grace period.
        # Several changes can overlap one flight (a fast climb), hence a short history, not one value.
        self.recent.append((now + self.config.difficulty_grace, self.difficulty))
        self.difficulty = new
        self.server.count("difficulty_changes")
        if self.active:
            self._later(encode_notification("mining.set_difficulty", [wire_difficulty(new)]))
            job = self.server.current_job()
            if job is not None:  # many miners only apply a new difficulty with the next notify
                self._later(self._notify(job, False))

    def on_job(self, job: Job) -> None:
        """A new job was published: forget dedup sets of jobs that left the book, then notify.

        Jobs still in the book keep their sets: a share for an older checkpoint's job is accepted, and
        the same share again is still a duplicate (the set holds header hashes, which cover prevhash,
        so the key is the job and the nonce, extranonce2, ntime and version bits)."""
        for job_id in [j for j in self.seen if j not in self.server.jobs]:
            del self.seen[job_id]
        if self.active:
            self.send(self._notify(job, job.clean_jobs))

    async def on_tick(self, now: float) -> None:
        """Timers: idle and authorization deadlines, pending approvals, vardiff without shares."""
        if self.closed:
            return
        cfg = self.config
        if now - self.last_seen > cfg.idle_timeout:
            self.close()
            return
        if self.pending and now >= self.next_pending_poll:
            self.next_pending_poll = now + cfg.pending_poll
            for worker, password in list(self.pending.items()):
                status = await self.server.call_backend("authorize", worker, password, self.user_agent)
                self._auth_result(worker, password, status, now, quiet=True)
        if not self.authorized:
            waited = now - (self.pending_since if self.pending else self.created)
            if waited > (cfg.pending_hold if self.pending else cfg.auth_timeout):
                self.close()
                return
        if self.active and self.vardiff is not None:
            new = self.vardiff.on_tick(now)
            if new is not None:
                self._set_difficulty(new, now)
        after, self._after = self._after, []
        for data in after:
            self.send(data)

    # ---- methods ------------------------------------------------------------------------------

    async def _true(self, params: list, now: float) -> bool:
        return True

    async def _pong(self, params: list, now: float) -> str:
        return "pong"

    async def _configure(self, params: list, now: float) -> dict:
        if not params or not isinstance(params[0], list):
            raise ProtocolError("mining.configure needs a list of extensions")
        options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        result: dict[str, Any] = {}
        for ext in params[0][:16]:
            if not isinstance(ext, str) or len(ext) > 64:
                continue
            if ext == "version-rolling":
                try:
                    requested = parse_hex32(options.get("version-rolling.mask", "ffffffff"), "mask")
                except ValueError as exc:
                    raise ProtocolError("Invalid version-rolling.mask") from exc
                self.version_mask = negotiate_mask(requested, self.config.version_mask)
                result["version-rolling"] = self.version_mask != 0
                result["version-rolling.mask"] = hex32(self.version_mask)
            elif ext == "subscribe-extranonce":
                result[ext] = True
            else:
                result[ext] = False  # BIP 310: say no to what we do not support
        return result

    async def _subscribe(self, params: list, now: float) -> list:
        if not self.subscribed:
            agent = params[0] if params and isinstance(params[0], str) else ""
            self.user_agent = agent[:MAX_NAME]
            profile = classify(self.user_agent, self.config.profiles)
            self.vardiff = Vardiff(profile, self.config.vardiff, now, start=self.suggested)
            self.difficulty = self.vardiff.difficulty
            self.subscribed = True
            self._activate(now)  # authorize may have come first
        sub_id = self.extranonce1.hex()
        return [
            [["mining.set_difficulty", sub_id], ["mining.notify", sub_id]],
            self.extranonce1.hex(),
            self.config.extranonce2_size,
        ]

    async def _authorize(self, params: list, now: float) -> bool:
        if not params or not isinstance(params[0], str) or not 0 < len(params[0]) <= MAX_NAME:
            raise ProtocolError("Invalid worker name")
        worker = params[0]
        password = params[1][:MAX_NAME] if len(params) > 1 and isinstance(params[1], str) else ""
        if worker in self.authorized:
            return True
        if worker not in self.pending and len(self.authorized) + len(self.pending) >= self.config.max_workers:
            raise OtherError("Too many workers on this connection")
        status = await self.server.call_backend("authorize", worker, password, self.user_agent)
        self._auth_result(worker, password, status, now)
        return True

    def _auth_result(self, worker: str, password: str, status: Any, now: float, quiet: bool = False) -> None:
        """Apply a backend answer; raises the error a direct mining.authorize must answer with."""
        if status == "ok":
            self.pending.pop(worker, None)
            self.authorized.add(worker)
            self._activate(now)
        elif status == "pending":
            if not self.pending:
                self.pending_since = now
                self.next_pending_poll = now + self.config.pending_poll
            self.pending[worker] = password
            if not quiet:
                raise UnauthorizedWorker("Unauthorized worker: waiting for approval")
        else:
            self.pending.pop(worker, None)
            if not self.authorized and not self.pending:
                self._close_after_reply = True
                if quiet:
                    self.close()
            if not quiet:
                raise UnauthorizedWorker("Unauthorized worker: refused")

    async def _suggest_difficulty(self, params: list, now: float) -> bool:
        if not params:
            raise ProtocolError("mining.suggest_difficulty needs a difficulty")
        value = _positive_number(params[0])
        if self.vardiff is None:
            self.suggested = value  # applied when mining.subscribe tells us what device this is
            return True
        new = self.vardiff.suggest(value, now)
        if new != self.difficulty:
            self._set_difficulty(new, now)
        return True

    def _credit(self, hash_int: int, now: float) -> int | float | None:
        """The lowest difficulty in force (now, or within the grace period) that the share meets.

        The lowest, because we cannot tell which of them the miner was working at: crediting the
        highest would over-count lucky in-flight shares, and a proof must never claim more work than
        was asked for. In steady state there is one difficulty and this is simply it.
        """
        candidates = [self.difficulty, *(d for until, d in self.recent if now < until)]
        met = [d for d in candidates if hash_int <= target_for_difficulty(d)]
        return min(met) if met else None

    async def _submit(self, params: list, now: float) -> bool:
        if len(params) not in (5, 6) or not all(isinstance(p, str) for p in params):
            raise ProtocolError("mining.submit needs 5 or 6 string params")
        worker, job_id, en2_hex, ntime_hex, nonce_hex = params[:5]
        if not self.subscribed:
            raise NotSubscribed()
        if worker not in self.authorized:
            raise UnauthorizedWorker()
        job = self.server.jobs.get(job_id)
        if job is None:
            raise JobNotFound()
        try:
            extranonce2 = parse_hex_bytes(en2_hex, self.config.extranonce2_size)
        except ValueError:
            raise OtherError("Invalid extranonce2 size") from None
        ntime = _submitted_u32(ntime_hex, "ntime")
        nonce = _submitted_u32(nonce_hex, "nonce")
        version_bits = _submitted_u32(params[5], "version bits") if len(params) == 6 else 0
        if not job.ntime <= ntime <= max(job.ntime, int(time.time())) + self.config.ntime_slack:
            raise OtherError("Ntime out of range")
        try:
            header = job.share_header(
                self.extranonce1, extranonce2, ntime, nonce, version_bits, self.version_mask
            )
        except ValueError:
            raise OtherError("Version bits outside the negotiated mask") from None
        ok, digest = check_header(header, target_for_difficulty(self.difficulty))
        credited = self._credit(hash_to_int(digest), now) if ok or self.recent else None
        if credited is None:
            raise LowDifficultyShare()
        entry = self.seen.get(job_id)
        if entry is None or entry[0] is not job:
            entry = self.seen[job_id] = (job, set())
        if digest in entry[1]:
            raise DuplicateShare()
        if len(entry[1]) >= self.config.max_shares_per_job:
            raise OtherError("Too many shares for this job")
        proof = make_proof(
            job,
            extranonce1=self.extranonce1,
            extranonce2=extranonce2,
            ntime=ntime,
            nonce=nonce,
            version_bits=version_bits,
            version_mask=self.version_mask,
            difficulty=credited,
            worker=worker,
            header=header,
            received_at=int(time.time()),
        )
        if not await self.server.call_backend("accept_share", proof):
            raise OtherError("Share not recorded")
        entry[1].add(digest)
        self.accepted += 1
        self.server.count("accepted")
        # Only shares at the current difficulty measure the hash rate: in-flight ones found before a
        # change would make a window that just opened look like a flood.
        new = self.vardiff.on_share(now, credited) if self.vardiff and credited == self.difficulty else None
        if new is not None:
            self._set_difficulty(new, now)
        return True
