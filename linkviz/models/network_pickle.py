"""Read one network out of a StyleGAN2 / StyleGAN3 / StyleGAN-XL network pickle, even where another network of the
same snapshot cannot be rebuilt.

A network pickle is a dict (``G``, ``D``, ``G_ema``, ``augment_pipe``, ``training_set_kwargs``) unpickled whole.
Its networks are "persistent classes": each object is pickled with the source code of its class's module, and
unpickling executes that source (``torch_utils.persistence``). StyleGAN-XL's discriminator ``D`` imports ``timm``,
so a plain ``pickle.load`` fails on a machine without ``timm`` even when only ``G_ema`` is wanted.
:class:`NetworkUnpickler` turns every object whose code cannot be imported into a :class:`MissingCode`
placeholder that records the failure; :func:`read_networks` raises only if the network asked for holds one.
"""

from __future__ import annotations

import pickle
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["MissingCode", "NetworkUnpickler", "missing_module_message", "read_networks"]

#: Top-level modules of the StyleGAN repositories themselves (NVlabs stylegan2-ada-pytorch / stylegan3,
#: autonomousvision/stylegan-xl): found by putting the repository on sys.path, not by pip.
_REPOSITORY_MODULES = frozenset({"dnnlib", "torch_utils", "training", "pg_modules", "feature_networks", "metrics"})
#: Packages that network pickles are known to need, and why.
_KNOWN_PACKAGES = {
    "timm": "timm==0.4.12 (StyleGAN-XL's discriminator D is built on it)",
    "clip": "CLIP (pip install git+https://github.com/openai/CLIP, for StyleGAN-XL's CLIP-guided training)",
}
#: The function of ``torch_utils.persistence`` that rebuilds a persistent object from its pickled module source.
_RECONSTRUCT = "_reconstruct_persistent_obj"


class MissingCode:
    """Stands in for an object of a network pickle whose code could not be imported while unpickling.

    Attributes
    ----------
    module : str
        The module whose import failed (e.g. ``"timm"``).
    what : str
        The object that could not be rebuilt (e.g. ``"persistent class ProjectedDiscriminator"``).
    """

    module: str = "?"
    what: str = "?"

    def __init__(self, *args: Any, module: str | None = None, what: str | None = None, **kwargs: Any) -> None:
        if module is not None:
            self.module = module
        if what is not None:
            self.what = what

    def __setstate__(self, state: Any) -> None:  # the object's state is unpickled, then dropped
        pass

    def __setitem__(self, key: Any, value: Any) -> None:  # for missing dict subclasses
        pass

    def append(self, value: Any) -> None:  # for missing list subclasses
        pass

    def extend(self, values: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<MissingCode: {self.what} needs module {self.module!r}>"


def _missing_class(module: str, name: str, error: ImportError) -> type[MissingCode]:
    """A :class:`MissingCode` subclass standing in for class (or function) ``module.name``."""
    failed = error.name or module
    return type(f"Missing_{name}", (MissingCode,), {"module": failed, "what": f"{module}.{name}"})


def _tolerant_reconstruct(reconstruct: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    """Wrap ``torch_utils.persistence._reconstruct_persistent_obj`` so that an ImportError while executing a
    persistent class's pickled module source yields a :class:`MissingCode`."""

    def rebuild(meta: dict[str, Any]) -> Any:
        try:
            return reconstruct(meta)
        except ImportError as error:
            class_name = meta.get("class_name", "?") if isinstance(meta, dict) else "?"
            return MissingCode(module=error.name or str(error), what=f"persistent class {class_name}")

    return rebuild


class NetworkUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds what it can and leaves :class:`MissingCode` where code cannot be imported.

    Parameters
    ----------
    file : binary file
        Opened for reading.
    """

    def find_class(self, module: str, name: str) -> Any:
        """Look up ``module.name``; a module that fails to import gives a placeholder class, and the persistence
        reconstruction function is wrapped so that its own import failures give placeholders too."""
        try:
            found = super().find_class(module, name)
        except ImportError as error:
            return _missing_class(module, name, error)
        if name == _RECONSTRUCT and module.rsplit(".", 1)[-1] == "persistence":
            return _tolerant_reconstruct(found)
        return found


def _children(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        yield from value.values()
    elif isinstance(value, (list, tuple, set, frozenset)):
        yield from value
    elif hasattr(value, "__dict__") and not isinstance(value, (type, types.ModuleType, types.FunctionType)):
        yield from vars(value).values()


def find_missing(value: Any) -> MissingCode | None:
    """The first :class:`MissingCode` in ``value`` or anything it holds (dict values, sequence items, attributes,
    so also every submodule, buffer and parameter of an ``nn.Module``), or None."""
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(item))
        if isinstance(item, MissingCode):
            return item
        if isinstance(item, type) and issubclass(item, MissingCode):
            return item()
        if type(item).__module__.startswith("torch") and type(item).__name__ in ("Tensor", "Parameter"):
            continue
        stack.extend(_children(item))
    return None


def missing_module_message(path: Path, module: str) -> str:
    """What to do when unpickling ``path`` failed on ``module``: repository modules go on sys.path, packages are
    installed.

    Parameters
    ----------
    path : Path
        The network pickle.
    module : str
        The module that could not be imported.
    """
    top = module.split(".")[0]
    if top in _REPOSITORY_MODULES:
        return (f"unpickling {path} needs module {module!r} from the StyleGAN repository, which is not importable; "
                "put the repository (the folder holding dnnlib/ and torch_utils/) on sys.path, e.g. "
                "sys.path.insert(0, '/path/to/stylegan3')")
    package = _KNOWN_PACKAGES.get(top, f"the package that provides {top!r} (pip install {top})")
    return (f"unpickling {path} needs module {module!r}, which is not installed: install {package}. The StyleGAN "
            "repository itself is importable (or not needed yet); the missing piece is this third-party package")


def read_networks(file: BinaryIO, *, path: Path, key: str) -> dict[Any, Any]:
    """Unpickle a network dict from ``file`` whose network ``key`` rebuilt completely.

    Other keys may hold :class:`MissingCode` (their code needs a module that is not importable); only the asked
    network must rebuild completely.

    Parameters
    ----------
    file : binary file
        The open network pickle.
    path : Path
        Its path, for messages.
    key : str
        The network to return, e.g. ``"G_ema"``.

    Returns
    -------
    dict
        The networks by key; ``dict[key]`` is checked to hold no :class:`MissingCode`.

    Raises
    ------
    ImportError
        If ``dict[key]`` (or the pickle's top level) needs a module that is not importable; the message names the
        module and what provides it.
    ValueError
        If the file is not a pickle.
    TypeError
        If the pickle is not a dict.
    KeyError
        If ``key`` is not in the dict.
    """
    try:
        networks = NetworkUnpickler(file).load()
    except (pickle.UnpicklingError, EOFError) as error:
        raise ValueError(f"{path} is not a pickle, so not a StyleGAN network pickle ({error}); pass the .pkl "
                         "file of a StyleGAN2 / StyleGAN3 / StyleGAN-XL release") from error
    if isinstance(networks, MissingCode):  # code that is missing, not a wrong type
        raise ImportError(missing_module_message(path, networks.module), name=networks.module)  # noqa: TRY004
    if not isinstance(networks, dict):
        raise TypeError(f"{path} holds a {type(networks).__name__}, not a StyleGAN network dict")
    if key not in networks:
        raise KeyError(f"{path} has no network {key!r}; available keys: {sorted(map(str, networks))}")
    missing = find_missing(networks[key])
    if missing is not None:
        loadable = sorted(str(name) for name, value in networks.items() if find_missing(value) is None)
        raise ImportError(f"{missing_module_message(path, missing.module)} ({path}[{key!r}] holds {missing.what}; "
                          f"keys that load without it: {loadable})", name=missing.module)
    return networks
