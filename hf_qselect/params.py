"""One declaration per parameter set, and what is derived from it: checks, CLI flags, recipe fields, provenance.

A parameter set is a dataclass whose fields carry :func:`param` metadata (help, check, CLI and recipe
names). From that single declaration come:

* :func:`check_params`: every value checked, in one place, before any work;
* :func:`add_cli_arguments` / :func:`from_cli`: ``argparse`` flags (``--block-size``; ``--no-polish`` for a
  ``True`` boolean) and the object they build;
* :func:`recipe_dataclass`: the ``HfArgumentParser`` dataclass of a YAML recipe;
* :func:`cli_command`: the flags that remake an object from its recorded parameters.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import warnings
from typing import Any, Callable, Optional

import numpy as np

MISSING = dataclasses.MISSING


def param(default: Any, help: str, *, check: Callable[[str, Any], Any] | None = None, cli: str | bool | None = None,
          recipe: bool = True, parse: Callable[[str], Any] | None = None, choices: Callable[[], list] | None = None,
          provenance: bool = True, recipe_type: Any = None) -> Any:
    """A dataclass field with its metadata.

    ``check(name, value)`` raises a one-line error; ``cli`` renames the flag (``False``: not offered there);
    ``recipe=False`` keeps the parameter out of recipes (its key is always ``<application prefix>_<name>``); ``parse`` turns a CLI string into the value; ``choices`` lists the allowed values;
    ``provenance=False`` marks a parameter that cannot change the result (workers, progress bars, caches),
    left out of the reproduce command; ``recipe_type`` is the annotation the recipe dataclass uses.
    """
    meta = {"help": help, "check": check, "cli": cli, "recipe": recipe, "parse": parse, "choices": choices,
            "provenance": provenance, "recipe_type": recipe_type}
    return dataclasses.field(default=default, metadata=meta)


def fields(cls_or_obj: Any) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls_or_obj) if "help" in f.metadata]


class DeclaredParams:
    """``get_params`` / ``set_params`` (scikit-learn style) of a class whose constructor is a parameter declaration,
    so ``sklearn.base.clone`` works and parameters stay exactly as given."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters as given."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def set_params(self, **params: Any) -> Any:
        """Set constructor parameters; unknown names raise."""
        known = self.get_params()
        for name, value in params.items():
            if name not in known:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; its parameters are {sorted(known)}")
            setattr(self, name, value)
        return self


# ------------------------------------------------------------------ checks
def optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A CLI parser that also takes ``none``."""
    def parse_optional(text: str) -> Any:
        return None if text.strip().lower() in ("none", "null", "") else parse(text)

    parse_optional.__name__ = getattr(parse, "__name__", "value")
    parse_optional.inner = parse
    return parse_optional


def json_object(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {text!r}")
    return value


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def integer(low: int | None = None, *, none: bool = False) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value is None and none:
            return None
        if not is_int(value) or (low is not None and value < low):
            bound = f" >= {low}" if low is not None else ""
            raise ValueError(f"{name} must be an integer{bound}{' or None' if none else ''}, got {name}={value!r}")
        return int(value)

    return check


def fraction(low: float, high: float, *, low_open: bool = False, high_open: bool = False,
             none: bool = False) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if value is None and none:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}")
        value = float(value)
        if value != value or (value >= high if high_open else value > high) or (value <= low if low_open else value < low):
            raise ValueError(f"{name} must be in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}, got {name}={value}")
        return value

    return check


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def one_of(choices: Callable[[], list], renamed: dict[str, str] | None = None) -> Callable[[str, Any], Any]:
    """One of ``choices()``; an old name in ``renamed`` is accepted as its new name, with a ``FutureWarning``."""
    def check(name: str, value: Any) -> Any:
        if renamed and isinstance(value, str) and value in renamed:
            warnings.warn(f"{name}={value!r} is deprecated: the same method is now {name}={renamed[value]!r}", FutureWarning, stacklevel=4)
            value = renamed[value]
        if value not in choices():
            raise ValueError(f"{name} must be one of {list(choices())}, got {value!r}")
        return value

    return check


def renamed_kwargs(values: dict[str, Any], renamed: dict[str, str], where: str, *, error: type[Exception] = TypeError,
                   form: str = "{}=") -> dict[str, Any]:
    """``values`` with old names replaced by the new ones (a ``FutureWarning`` each, naming both as ``form`` shows
    them); giving both is an ``error``."""
    out = dict(values)
    for old, new in renamed.items():
        if old in out:
            was, now = form.format(old), form.format(new)
            if new in out:
                raise error(f"{where} gives both {was} and {now}: {was} is the old name of {now}; keep {now}")
            warnings.warn(f"{where} {was} is deprecated: use {now}", FutureWarning, stacklevel=3)
            out[new] = out.pop(old)
    return out


def renamed_value(renamed: dict[str, str]) -> Callable[[str], str]:
    """A command-line parser that turns an old value name into its new one (with a ``FutureWarning``)."""
    def parse(text: str) -> str:
        if text in renamed:
            warnings.warn(f"{text!r} is deprecated: the same method is now {renamed[text]!r}", FutureWarning, stacklevel=2)
        return renamed.get(text, text)

    return parse


def string(*, none: bool = False) -> Callable[[str, Any], Any]:
    def check(name: str, value: Any) -> Any:
        if (value is None and none) or isinstance(value, str):
            return value
        raise TypeError(f"{name} must be a string{' or None' if none else ''}, got {value!r}")

    return check


def passes(check: Callable[[Any], Any]) -> Callable[[str, Any], Any]:
    """A parameter check from a one-argument check that raises on a bad value (its message names the parameter)."""
    def check_value(name: str, value: Any) -> Any:
        check(value)
        return value

    return check_value


def check_params(obj: Any) -> dict[str, Any]:
    """Check every declared parameter of ``obj``; return the checked values (``obj`` is not modified)."""
    values = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        check = f.metadata["check"]
        values[f.name] = check(f.name, value) if check is not None else value
    return values


# ------------------------------------------------------------------ the command line
def cli_flag(f: dataclasses.Field) -> str | None:
    """``--block-size``, ``--no-polish`` for a boolean that defaults to ``True``, ``None`` when not on the CLI."""
    cli = f.metadata["cli"]
    if cli is False:
        return None
    if isinstance(cli, str):
        return cli
    name = f.name.replace("_", "-")
    return f"--no-{name}" if f.default is True else f"--{name}"


def _parser_of(f: dataclasses.Field) -> Callable[[str], Any]:
    if f.metadata["parse"] is not None:
        return f.metadata["parse"]
    kind = type(f.default) if f.default is not None else str
    return optional(kind) if f.default is None else kind


def add_cli_arguments(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (),
                      defaults: dict[str, Any] | None = None) -> None:
    """One ``argparse`` option per declared field of ``cls`` (except ``skip``)."""
    defaults = defaults or {}
    for f in fields(cls):
        flag = cli_flag(f)
        if flag is None or f.name in skip:
            continue
        default = defaults.get(f.name, f.default)
        if isinstance(f.default, bool):
            action = "store_false" if f.default is True else "store_true"
            parser.add_argument(flag, dest=f.name, action=action, default=default, help=help_text(f.metadata["help"]))
            continue
        choices = f.metadata["choices"]() if f.metadata["choices"] else None
        parser.add_argument(flag, dest=f.name, type=_parser_of(f), default=default, choices=choices,
                            help=help_text(f"{f.metadata['help']} (default: {default})"))


class RenamedFlag(argparse.Action):
    """An old flag kept for one release: stores into the new flag's destination, with a ``FutureWarning``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        warnings.warn(f"{option_string} is deprecated: use --{self.dest.replace('_', '-')}", FutureWarning, stacklevel=2)
        setattr(namespace, self.dest, values)


def add_renamed_flags(parser: argparse.ArgumentParser, cls: type, renamed: dict[str, str]) -> None:
    """Hidden ``--old`` flags for renamed parameters of ``cls`` (``renamed``: old name -> new name)."""
    declared = {f.name: f for f in fields(cls)}
    for old, new in renamed.items():
        parser.add_argument(f"--{old.replace('_', '-')}", dest=new, type=_parser_of(declared[new]), action=RenamedFlag,
                            default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def from_cli(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """Build ``cls`` from the parsed flags (fields not on the CLI keep their defaults)."""
    given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    return cls(**{**given, **extra})


def cli_command(cls: type, values: dict[str, Any], *, always: tuple[str, ...] = ()) -> list[str]:
    """The flags that remake ``values``: the ``always`` fields plus every value that differs from its default.

    Fields with ``provenance=False`` (workers, progress, caches) and fields not on the CLI are left out.
    """
    argv: list[str] = []
    for f in fields(cls):
        flag = cli_flag(f)
        if flag is None or not f.metadata["provenance"] or f.name not in values:
            continue
        value = values[f.name]
        if isinstance(value, list):
            value = tuple(value)  # as a JSON report records a tuple
        if f.name not in always and value == f.default:
            continue
        if isinstance(f.default, bool):
            if value != f.default:
                argv.append(flag)
            continue
        if value is None:
            argv += [flag, "none"]
        elif isinstance(value, dict):
            argv += [flag, json.dumps(value, sort_keys=True)]
        elif isinstance(value, tuple):
            argv += [flag, ",".join(map(str, value))]
        else:
            argv += [flag, str(value)]
    return argv


# ------------------------------------------------------------------ recipes
def recipe_name(f: dataclasses.Field, prefix: str = "") -> str | None:
    """The recipe key of a declared field: ``<prefix>_<name>`` (one scheme for every application), ``None`` when the
    field is not offered to recipes (``recipe=False``)."""
    if f.metadata["recipe"] is False:
        return None
    return f"{prefix}_{f.name}" if prefix else f.name


def _recipe_type(f: dataclasses.Field) -> Any:
    if f.metadata["recipe_type"] is not None:
        return f.metadata["recipe_type"]
    kind = type(f.default) if f.default is not None else str
    return Optional[kind] if f.default is None else kind


def help_text(text: str) -> str:
    """``text`` for argparse, which formats help with ``%``: a literal ``%`` (as in ``'25%'``) is doubled."""
    return text.replace("%", "%%")


def recipe_dataclass(cls: type, name: str, doc: str, prefix: str) -> type:
    """The recipe dataclass of ``cls``: one field per declared field offered to recipes, under ``<prefix>_<name>``.

    The class remembers which parameter each key stands for (``__recipe_params__``), for :func:`from_recipe`.
    """
    made, keys = [], {}
    for f in fields(cls):
        key = recipe_name(f, prefix)
        if key is None:
            continue
        choices = f.metadata["choices"]
        text = f.metadata["help"] + (f" ({', '.join(map(str, choices()))})" if choices else "")
        made.append((key, _recipe_type(f), dataclasses.field(default=f.default, metadata={"help": help_text(text)})))
        keys[key] = f.name
    made_cls = dataclasses.make_dataclass(name, made)
    made_cls.__doc__ = doc
    made_cls.__recipe_params__ = (cls, keys)
    return made_cls


def recipe_keys(recipe_cls: type, cls: type) -> dict[str, str]:
    """``{recipe key: parameter name}`` of the parameters of ``cls`` that ``recipe_cls`` (or a base of it) carries."""
    for klass in recipe_cls.__mro__:
        entry = klass.__dict__.get("__recipe_params__")
        if entry and issubclass(cls, entry[0]):
            return entry[1]
    raise TypeError(f"{recipe_cls.__name__} carries no recipe fields of {cls.__name__}")


def _recipe_values(cls: type, recipe: Any) -> dict[str, tuple[str, Any]]:
    """``{parameter: (recipe key, value)}`` of the parameters of ``cls`` that ``recipe`` carries (JSON strings become dicts)."""
    parsers = {g.name: getattr(g.metadata["parse"], "inner", g.metadata["parse"]) for g in fields(cls)}
    values = {}
    for key, target in recipe_keys(type(recipe), cls).items():
        value = getattr(recipe, key)
        if isinstance(value, str) and parsers.get(target) is json_object:
            value = json_object(value)
        values[target] = (key, value)
    return values


def from_recipe(cls: type, recipe: Any, **extra: Any) -> Any:
    """Build ``cls`` from a recipe made with :func:`recipe_dataclass` (JSON strings become dicts)."""
    values = {target: value for target, (_, value) in _recipe_values(cls, recipe).items()}
    return cls(**{**values, **extra})


def check_recipe(cls: type, recipe: Any) -> None:
    """Check each parameter of ``cls`` that ``recipe`` carries, before any work; the error names the recipe key."""
    checks = {f.name: f.metadata["check"] for f in fields(cls)}
    for target, (key, value) in _recipe_values(cls, recipe).items():
        if checks.get(target) is not None:
            checks[target](key, value)
