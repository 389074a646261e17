"""Console logins: accounts and roles from the settings, passwords checked against argon2
hashes (argon2-cffi); the clear password is never stored.

>>> h = hash_password("correct horse")
>>> accounts = Accounts({"ana": ConsoleAccount(role="analyst", password_hash=h)})
>>> accounts.verify("ana", "correct horse")
'analyst'
>>> accounts.verify("ana", "wrong") is None, accounts.verify("bob", "x") is None
(True, True)
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from finpulse.config.settings import ConsoleAccount

ROLES_THAT_ACT = frozenset({"analyst"})
_hasher = PasswordHasher()
# Verified when the account is unknown, so a wrong name costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("finpulse: no such account")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` for ``FINPULSE_CONSOLE_ACCOUNTS``."""
    return _hasher.hash(password)


class Accounts:
    """The console's accounts (name -> role and password hash)."""

    def __init__(self, accounts: dict[str, ConsoleAccount]) -> None:
        self._accounts = dict(accounts)

    @property
    def names(self) -> list[str]:
        return sorted(self._accounts)

    def verify(self, name: str, password: str) -> str | None:
        """The account's role if ``password`` is right, else ``None``."""
        account = self._accounts.get(name)
        stored = account.password_hash.get_secret_value() if account else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return account.role if account else None
