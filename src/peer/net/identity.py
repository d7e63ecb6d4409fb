"""A node's long-term Ed25519 identity.

The raw 32-byte public key *is* the node id on the wire (as in Secure
Scuttlebutt and libp2p's inlined Ed25519 peer ids); ``public_hex`` is the same
key as 64 lowercase hex chars for logs, topology files and the ledger.  ``name``
is a short, deterministic, human-friendly label for the TUI only: it is never
used to authenticate anything.

The key file holds the 32-byte seed as hex.  It is created with mode 0600 from
the start (``os.open(..., 0o600)``), never ``open()`` followed by ``chmod``,
which would leave a window in which the secret is world-readable, and a key file
that group or others can read is refused on load, as ssh does.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import SigningKey, VerifyKey

from peer.errors import PeerError

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32

# 64 words each: one byte of the key picks a word (6 bits each), so the name
# is a pure function of the public key.  The hex suffix keeps names distinct in
# networks of thousands of nodes, where 4096 word pairs alone would collide.
_ADJECTIVES = (
    "amber", "brave", "calm", "dapper", "eager", "fancy", "gentle", "happy",
    "icy", "jolly", "keen", "lively", "mellow", "nimble", "odd", "proud",
    "quick", "rapid", "shy", "tidy", "upbeat", "vivid", "witty", "young",
    "zesty", "bold", "crisp", "dusty", "early", "fuzzy", "grand", "hazy",
    "inky", "jazzy", "kind", "lucky", "misty", "noble", "olive", "plucky",
    "quiet", "rosy", "sunny", "tame", "urban", "velvet", "warm", "wild",
    "azure", "brisk", "cosy", "deft", "elder", "fair", "glad", "hardy",
    "ivory", "just", "lean", "merry", "neat", "polar", "royal", "sly",
)
_NOUNS = (
    "otter", "badger", "crane", "dingo", "eagle", "ferret", "gecko", "heron",
    "ibis", "jackal", "koala", "lemur", "marten", "newt", "ocelot", "panda",
    "quail", "raven", "stoat", "tapir", "urchin", "vole", "walrus", "yak",
    "zebra", "bison", "camel", "dove", "egret", "finch", "goose", "hare",
    "impala", "jay", "kiwi", "llama", "moose", "narwhal", "owl", "puffin",
    "robin", "seal", "tern", "viper", "wombat", "wren", "alpaca", "beaver",
    "cobra", "deer", "eel", "fox", "gull", "hawk", "iguana", "kestrel",
    "lynx", "mole", "orca", "pike", "rook", "swan", "toad", "wolf",
)
if len(_ADJECTIVES) != 64 or len(_NOUNS) != 64:  # pragma: no cover - edit-time guard
    raise RuntimeError("the name word lists must have exactly 64 entries each")


class IdentityError(PeerError):
    """A key file is missing, malformed or unsafe to use."""


def short_name(public_key: bytes) -> str:
    """A readable label for ``public_key``, e.g. ``"brave-otter-3fa2"`` (deterministic)."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError("a public key is 32 bytes")
    return f"{_ADJECTIVES[public_key[0] & 63]}-{_NOUNS[public_key[1] & 63]}-{public_key[2:4].hex()}"


def verify(public_key: bytes, data: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is ``public_key``'s detached signature of ``data``.

    Never raises: malformed keys or signatures (wrong length, not a curve point)
    are just "does not verify", so callers on the receive path need one branch.
    """
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        VerifyKey(bytes(public_key)).verify(bytes(data), bytes(signature))
    except (BadSignatureError, NaclValueError, ValueError, TypeError):
        return False
    return True


class Identity:
    """An Ed25519 signing key plus the derived public forms.

    Build it with :meth:`generate`, :meth:`from_seed` (tests, deterministic
    clusters) or :meth:`load`; never from an untrusted source.
    """

    __slots__ = ("_key", "public_key")

    def __init__(self, signing_key: SigningKey) -> None:
        self._key = signing_key
        #: The raw 32-byte public key: the node id on the wire.
        self.public_key: bytes = bytes(signing_key.verify_key)

    @classmethod
    def generate(cls) -> Identity:
        return cls(SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """The identity whose secret seed is ``seed`` (exactly 32 bytes)."""
        if len(seed) != SEED_BYTES:
            raise ValueError("an Ed25519 seed is exactly 32 bytes")
        return cls(SigningKey(bytes(seed)))

    @property
    def public_hex(self) -> str:
        return self.public_key.hex()

    @property
    def name(self) -> str:
        return short_name(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte detached signature of ``data``."""
        return bytes(self._key.sign(bytes(data)).signature)

    # Kept as a static method too, so ``Identity.verify(pk, data, sig)`` reads naturally.
    verify = staticmethod(verify)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the seed to ``path`` with mode 0600.

        The file is created 0600 under a temporary name, fsynced, then renamed
        over ``path``, so a crash never leaves a half-written key and an old
        file's wider mode is never inherited.

        Raises:
            IdentityError: ``path`` exists and ``overwrite`` is false.
        """
        target = Path(path)
        if target.is_dir():
            raise IdentityError(f"{target}: is a directory; give a file name, e.g. {target / 'node.key'}")
        if target.exists() and not overwrite:
            raise IdentityError(f"{target}: key file exists; refusing to overwrite it")
        tmp = target.with_name(target.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # an existing stale .tmp keeps its old mode under O_CREAT
            os.write(fd, bytes(self._key).hex().encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Identity:
        """Read a key file written by :meth:`save`.

        Raises:
            IdentityError: the file is missing, readable by group or others, or
                does not hold a 32-byte hex seed.
        """
        target = Path(path)
        try:
            fd = os.open(target, os.O_RDONLY)
        except OSError as exc:
            raise IdentityError(f"{target}: cannot open key file: {exc.strerror}") from None
        try:
            mode = os.fstat(fd).st_mode  # fstat on the opened fd: no check-then-open race
            if not stat.S_ISREG(mode):
                raise IdentityError(f"{target}: not a key file (a directory or a device); give the file "
                                    "that `peer keygen --out` wrote")
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise IdentityError(
                    f"{target}: key file is accessible by group/others "
                    f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {target}`"
                )
            raw = os.read(fd, 4096)
        finally:
            os.close(fd)
        try:
            seed = bytes.fromhex(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise IdentityError(f"{target}: key file does not hold a hex seed") from None
        if len(seed) != SEED_BYTES:
            raise IdentityError(f"{target}: key file holds {len(seed)} bytes, expected {SEED_BYTES}")
        return cls(SigningKey(seed))

    def __repr__(self) -> str:  # never print the secret
        return f"Identity({self.name}, {self.public_hex[:16]}…)"
