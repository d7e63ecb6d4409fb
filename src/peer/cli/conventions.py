"""The command-line conventions every ``peer`` command follows.

* ``-h`` as well as ``--help`` (inherited by every sub-command through the context);
* plain help text that wraps and is never cut off (typer's rich panels truncate
  long help when the option column is wide, as ``peer run``'s is);
* command lists that show each command's whole first paragraph, not a stub cut at
  45 characters or at the first full stop ("The SRA paper's Sec.");
* usage lines that read ``peer sim [OPTIONS] SCENARIO`` and option types that read
  ``TEXT``, ``INTEGER``, ``PATH`` or the real choice list ``[sra|replay|...]``,
  instead of typer's ``{scenario}``, ``<str>`` and ``<bool>``.

Use :func:`new_app` for every typer app and ``cls=PeerCommand`` for every command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

EXIT_BAD_INPUT = 2
HELP_OPTIONS = ["-h", "--help"]
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": HELP_OPTIONS}

# typer's type labels (without the angle brackets) -> the metavar shown.
_LABELS = {"str": "TEXT", "int": "INTEGER", "int range": "INTEGER", "float": "NUMBER", "float range": "NUMBER",
           "path": "PATH", "file": "FILE", "directory": "DIR"}


def new_app(*, add_completion: bool = False, **kwargs: Any) -> typer.Typer:
    """A typer app with peer's conventions (completion only on the root app)."""
    return typer.Typer(
        cls=PeerGroup, context_settings=dict(CONTEXT_SETTINGS), rich_markup_mode=None, add_completion=add_completion,
        pretty_exceptions_enable=False, **kwargs,
    )


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """One ``error:`` line on stderr, verbatim (markup off: messages contain "[key]"; no wrapping), then exit."""
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


def prepare_out_dir(out: Path, option: str = "--out") -> None:
    """Create an output directory before a long run, so that an unwritable one fails in a second, not after."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".peer-write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        fail(f"{option} {out}: cannot write there: {exc.strerror or exc}")


def _metavar(param: TyperOption, ctx: Any) -> str:
    desc = param.type_descriptor
    if desc.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices or ()) + "]"
    label = param.display_type(ctx).strip("<>")
    return _LABELS.get(label, label.upper())


def first_paragraph(command: Any) -> str:
    """The short help of ``command``: its own, else its help's first paragraph, whole."""
    text = command.short_help or command.help or ""
    return " ".join(text.strip().split("\n\n")[0].split())


class PeerGroup(TyperGroup):
    """A typer group listed, in its parent's command list, by its whole first paragraph."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return first_paragraph(self)


class PeerCommand(TyperCommand):
    """A typer command whose usage line and option types read like a Unix manual."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return first_paragraph(self)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            if param.metavar is not None:
                continue
            if isinstance(param, TyperArgument):
                param.metavar = (param.name or "ARG").upper()
                if getattr(param, "bare_type", lambda: "")() in ("str", "list[str]", "list[Path]"):
                    # A text or file-list argument's type says nothing its name and help do not.
                    param.display_type = lambda ctx: None  # type: ignore[method-assign]
            elif isinstance(param, TyperOption) and not param.is_flag:
                param.metavar = _metavar(param, ctx)
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        # typer writes a required argument as {NAME}; the convention is a bare NAME.
        pieces = super().collect_usage_pieces(ctx)
        out = []
        for piece in pieces:
            core, dots = (piece[:-3], "...") if piece.endswith("...") else (piece, "")
            out.append(core[1:-1] + dots if core.startswith("{") and core.endswith("}") else piece)
        return out
