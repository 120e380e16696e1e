"""Every exception the app defines sits in the one tree of b24app/errors.py, and its docstring draws it."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import b24app
from b24app import errors
from b24app.errors import AppError


def _app_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(b24app.__path__, "b24app."):
        if info.name.startswith("b24app.sandbox"):
            continue  # the other side of the wire has its own errors (Bitrix24's)
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
    return list(found.values())


def test_every_exception_of_the_app_derives_from_app_error() -> None:
    strays = [f"{cls.__module__}.{cls.__qualname__}" for cls in _app_exceptions() if not issubclass(cls, AppError)]
    assert strays == []


def test_the_tree_in_the_docstring_names_every_exception() -> None:
    drawing = errors.__doc__ or ""
    missing = sorted(cls.__name__ for cls in _app_exceptions() if cls.__name__ not in drawing)
    assert missing == []


def test_the_tree_has_no_http_status() -> None:
    assert not [cls for cls in _app_exceptions() if "status" in vars(cls) or "api_status" in vars(cls)]
