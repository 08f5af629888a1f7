"""Persistent classes, as StyleGAN's ``torch_utils.persistence`` documents them.

An instance of a class decorated with :func:`persistent_class` pickles as a call of
:func:`_reconstruct_persistent_obj` with the full source code of the class's module, the class name and the
instance's state. Unpickling executes that source in a fresh module (``_imported_module_<hash>``), takes the class
from it and restores the state, so the class's own module need not be importable where the pickle is loaded; only
this module (``torch_utils.persistence``) and whatever the pickled source imports must be.
"""

import copy
import hashlib
import inspect
import sys
import types
from typing import Any

_VERSION = 6
_source_by_module_name: dict[str, str] = {}
_module_by_source: dict[str, types.ModuleType] = {}


def _module_source(module_name: str) -> str:
    if module_name not in _source_by_module_name:
        _source_by_module_name[module_name] = inspect.getsource(sys.modules[module_name])
    return _source_by_module_name[module_name]


def _module_from_source(source: str) -> types.ModuleType:
    """Execute ``source`` once per process in a module of its own; a failed execution leaves nothing behind."""
    if source in _module_by_source:
        return _module_by_source[source]
    name = "_imported_module_" + hashlib.sha1(source.encode()).hexdigest()[:16]
    module = types.ModuleType(name)
    sys.modules[name] = module
    _source_by_module_name[name] = source
    try:
        exec(compile(source, f"<pickled source of {name}>", "exec"), module.__dict__)  # noqa: S102 (what persistence is)
    except BaseException:
        del sys.modules[name], _source_by_module_name[name]
        raise
    _module_by_source[source] = module
    return module


def is_persistent(obj: Any) -> bool:
    """Whether ``obj`` is a persistent class or an instance of one."""
    cls = obj if isinstance(obj, type) else type(obj)
    return getattr(cls, "_persistent_marker", None) is cls


def persistent_class(orig_class: type) -> type:
    """Decorate a class so that its instances pickle with the source code of the class's module."""
    if is_persistent(orig_class):
        return orig_class
    module_name = orig_class.__module__

    class Persistent(orig_class):
        _orig_module_name = module_name
        _orig_class_name = orig_class.__name__

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)

        @property
        def init_args(self) -> tuple:
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self) -> dict:
            return copy.deepcopy(self._init_kwargs)

        def __reduce__(self) -> tuple:
            fields = list(super().__reduce__()) + [None] * 3
            meta = {"type": "class", "version": _VERSION, "module_src": _module_source(self._orig_module_name),
                    "class_name": self._orig_class_name, "state": fields[2]}
            return (_reconstruct_persistent_obj, (meta,), None, *fields[3:5])

    Persistent._persistent_marker = Persistent
    Persistent.__name__ = orig_class.__name__
    Persistent.__qualname__ = orig_class.__qualname__
    Persistent.__module__ = module_name
    return Persistent


def _reconstruct_persistent_obj(meta: dict) -> Any:
    """Rebuild a persistent object from its pickled module source, class name and state."""
    if meta.get("type") != "class" or meta.get("version") != _VERSION:
        raise ValueError(f"unknown persistent object: type {meta.get('type')!r}, version {meta.get('version')!r}")
    module = _module_from_source(meta["module_src"])
    cls = persistent_class(module.__dict__[meta["class_name"]])
    obj = cls.__new__(cls)
    setstate = getattr(obj, "__setstate__", None)
    if callable(setstate):
        setstate(meta["state"])
    else:
        obj.__dict__.update(meta["state"])
    return obj
