"""Human-readable patient numbers that a node allocates offline without colliding with another node.

Format: PREFIX-SEQUENCE-C, e.g. "KQ7F3A-000123-M". PREFIX is the node's (unique per district, or
derived from its public key), SEQUENCE is the node's own counter, C is a Luhn mod 36 check character
that catches every single-character error and most transpositions made when a number is read aloud.
"""

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_N = len(ALPHABET)


def check_character(body: str) -> str:
    factor = 2
    total = 0
    for char in reversed(body):
        code = ALPHABET.index(char) * factor
        total += code // _N + code % _N
        factor = 1 if factor == 2 else 2
    return ALPHABET[(_N - total % _N) % _N]


def format_patient_number(prefix: str, sequence: int) -> str:
    if not prefix or any(c not in ALPHABET for c in prefix):
        raise ValueError(f"node prefix {prefix!r} must be upper-case letters and digits")
    if sequence < 1:
        raise ValueError("sequence numbers start at 1")
    body = f"{prefix}{sequence:06d}"
    return f"{prefix}-{sequence:06d}-{check_character(body)}"


def is_valid_patient_number(number: str) -> bool:
    parts = number.strip().upper().split("-")
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 1:
        return False
    prefix, sequence, check = parts
    if not prefix or any(c not in ALPHABET for c in prefix):
        return False
    return check_character(prefix + sequence) == check
