"""Password hashing sized for a 2-core, solar-powered node.

Argon2id at one of OWASP's equivalent settings (19 MiB, 2 passes, 1 lane): memory-hard, so a stolen
user table is as costly to attack as with Django's default Argon2 (100 MiB, 8 lanes), at a few tens of
milliseconds of one core per login instead of the ~0.5 s of Django 5.2's PBKDF2 (1,000,000 rounds).
The algorithm name stays "argon2", so hashes made with other Argon2 settings still verify and are
re-hashed with these at the next successful login, as PBKDF2 hashes are.
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class NodeArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
