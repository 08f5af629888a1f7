"""Selection: the one unit and the classes that every view of an app shares, with observers.

Plain Python (no widget toolkit): :class:`linkviz.widgets.ExploreApp` keeps one and binds each tab's controls to
it. A view that lets the user choose a unit calls :meth:`Selection.select_unit`; every observer then hears the
new unit and moves its own control. Observers are called only when a value really changes, so a view that
echoes the unit back (its control's observer calls :meth:`~Selection.select_unit` with the same unit) ends the
round trip instead of looping.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from linkviz.models.edits import as_unit

__all__ = ["Selection"]

What = Literal["unit", "classes"]


class Selection:
    """The selected unit and the chosen classes of an app, with observers for each.

    Parameters
    ----------
    class_names : sequence of str
        Every class of the world, in logit order.
    n_units : int, optional
        Number of units; when known, :meth:`select_unit` refuses units outside ``[0, n_units)``.
    unit : int, optional
        Initially selected unit (default none yet).
    classes : iterable of str
        Initially chosen classes; none chosen means every class is shown.

    Attributes
    ----------
    class_names : tuple of str
    """

    def __init__(self, class_names: Sequence[str], *, n_units: int | None = None, unit: int | None = None,
                 classes: Iterable[str] = ()) -> None:
        self.class_names = tuple(str(name) for name in class_names)
        if not self.class_names or len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class_names must be distinct and non-empty; got {self.class_names}")
        self._n_units: int | None = None
        self._unit: int | None = None
        self._classes: tuple[str, ...] = ()
        self._observers: dict[str, list[Callable[[Any], None]]] = {"unit": [], "classes": []}
        self.n_units = n_units
        if unit is not None:
            self._unit = self.check_unit(unit)
        self._classes = self.check_classes(classes)

    def __repr__(self) -> str:
        classes = ", ".join(self._classes) or "all"
        return f"Selection(unit={self._unit}, classes=[{classes}], n_units={self._n_units})"

    # --- the unit ---

    @property
    def unit(self) -> int | None:
        """The selected unit (None until one is chosen)."""
        return self._unit

    @property
    def n_units(self) -> int | None:
        """Number of units, once known (None: any unit ``>= 0`` is accepted)."""
        return self._n_units

    @n_units.setter
    def n_units(self, n_units: int | None) -> None:
        if n_units is not None:
            n_units = operator.index(n_units)
            if n_units < 1:
                raise ValueError(f"n_units must be positive; got {n_units}")
            if self._unit is not None and self._unit >= n_units:
                raise IndexError(f"the selected unit {self._unit} is out of range for {n_units} units")
        self._n_units = n_units

    def check_unit(self, unit: int) -> int:
        """``unit`` as int; ValueError if it is not an integer, IndexError if it is out of range."""
        unit = as_unit(unit)
        if unit < 0 or (self._n_units is not None and unit >= self._n_units):
            valid = "0 or more" if self._n_units is None else f"0..{self._n_units - 1}"
            raise IndexError(f"unit {unit} out of range (valid: {valid})")
        return unit

    def select_unit(self, unit: int) -> bool:
        """Select ``unit`` and tell the unit observers; True if the selection changed.

        Raises
        ------
        ValueError
            If ``unit`` is not an integer.
        IndexError
            If ``unit`` is out of range.
        """
        unit = self.check_unit(unit)
        if unit == self._unit:
            return False
        self._unit = unit
        self._notify("unit", unit)
        return True

    # --- the classes ---

    @property
    def classes(self) -> tuple[str, ...]:
        """The chosen classes, in logit order (empty: no filter)."""
        return self._classes

    @property
    def shown_classes(self) -> tuple[str, ...]:
        """The classes the views show: the chosen ones, or all when none is chosen."""
        return self._classes or self.class_names

    @property
    def class_indices(self) -> tuple[int, ...]:
        """Logit indices of :attr:`shown_classes`."""
        shown = set(self.shown_classes)
        return tuple(k for k, name in enumerate(self.class_names) if name in shown)

    def check_classes(self, classes: Iterable[str]) -> tuple[str, ...]:
        """Class names, deduplicated and in logit order; ValueError for a name that is not a class."""
        if isinstance(classes, str):
            classes = (classes,)
        chosen = {str(name) for name in classes}
        unknown = sorted(chosen - set(self.class_names))
        if unknown:
            raise ValueError(f"unknown classes {unknown}; the classes are {list(self.class_names)}")
        return tuple(name for name in self.class_names if name in chosen)

    def select_classes(self, classes: Iterable[str]) -> bool:
        """Choose the classes the views show (none: all) and tell the class observers; True if they changed."""
        classes = self.check_classes(classes)
        if classes == self._classes:
            return False
        self._classes = classes
        self._notify("classes", classes)
        return True

    # --- observers ---

    def observe(self, callback: Callable[[Any], None], what: What = "unit") -> Callable[[], None]:
        """Call ``callback(new_value)`` whenever the unit (or the classes) change; returns a function that stops it.

        Observers run in the order they were added, on the thread that changed the selection. An observer that
        changes the selection again starts a new round; the older round then stops, so no observer hears a
        stale value after a newer one.
        """
        if what not in self._observers:
            raise ValueError(f"what must be 'unit' or 'classes'; got {what!r}")
        self._observers[what].append(callback)

        def unobserve() -> None:
            if callback in self._observers[what]:
                self._observers[what].remove(callback)

        return unobserve

    def _notify(self, what: str, value: Any) -> None:
        for callback in list(self._observers[what]):
            if getattr(self, f"_{what}") != value:  # a newer value was announced by a nested change
                return
            callback(value)
