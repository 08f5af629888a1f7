"""``EasyDict``: a dict whose keys are also attributes (``training_set_kwargs`` of a snapshot is one)."""

from typing import Any


class EasyDict(dict):
    """A dict with attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        del self[name]
