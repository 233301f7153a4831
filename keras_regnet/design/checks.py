"""Argument checks with one message form: "Invalid `name`: value. Expected ...".

Every public function of the project checks its arguments with these
before any expensive work; the command line restates the same messages
with the flag and the text the user typed.
"""

import math
import numbers


def invalid(name, value, expected):
    """The `ValueError` for argument `name` holding `value`."""
    return ValueError(f"Invalid `{name}`: {value!r}. Expected {expected}.")


def check(ok, name, value, expected):
    """Raises `invalid(name, value, expected)` unless `ok`."""
    if not ok:
        raise invalid(name, value, expected)


def is_number(x):
    """A real number (Python or NumPy), not a bool; may be infinite or NaN."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def is_real(x):
    """A finite real number, not a bool."""
    return is_number(x) and math.isfinite(x)


def is_int(x):
    """An integer (Python or NumPy), not a bool."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def check_int(name, value, high=None, low=1):
    """An integer in `[low, high]` (`high=None`: no upper bound)."""
    check(is_int(value) and value >= low and (high is None or value <= high),
          name, value, f"an integer >= {low}" if high is None
          else f"an integer in [{low}, {high}]")


def check_real(name, value, above=0.0, high=math.inf):
    """A finite number in `(above, high]`."""
    check(is_real(value) and above < value <= high, name, value,
          f"a finite number > {above:g}"
          + ("" if high == math.inf else f" and <= {high:g}"))


def check_choice(name, value, allowed):
    """One of `allowed`."""
    check(not isinstance(value, bool) and value in allowed, name, value,
          f"one of {tuple(allowed)}")


def normalize_range(name, value, limits, *, integer=False, quantum=None,
                    open_low=False):
    """A fixed number or `(lo, hi)` -> `(lo, hi)`, checked against `limits`
    (the paper's limits of the design space)."""
    lo_lim, hi_lim = limits
    if is_number(value):
        value = (value, value)
    if not (isinstance(value, (tuple, list)) and len(value) == 2
            and all(is_number(v) for v in value)):
        raise invalid(name, value, "a number or a `(lo, hi)` pair of numbers")
    lo, hi = value
    if integer and not all(float(v).is_integer() for v in value):
        raise invalid(name, value, "integers")
    if lo > hi:
        raise invalid(name, value, "lo <= hi")
    lo_ok = lo > lo_lim if open_low else lo >= lo_lim
    if not (lo_ok and hi <= hi_lim):
        bound = f"{lo_lim} <" if open_low else f"{lo_lim} <="
        raise invalid(name, value,
                      f"values with {bound} {name} <= {hi_lim} (the paper's limits)")
    if quantum and (lo % quantum or hi % quantum):
        raise invalid(name, value, f"multiples of {quantum}")
    cast = int if integer else float
    return cast(lo), cast(hi)


def normalize_choices(name, value, allowed):
    """A fixed number or a sequence of allowed values -> sorted tuple."""
    if is_number(value):
        value = (value,)
    if not (isinstance(value, (tuple, list)) and value
            and all(is_number(v) for v in value)):
        raise invalid(name, value, f"a value or a non-empty list of values from {allowed}")
    if not set(value) <= set(allowed):
        raise invalid(name, value, f"values from {allowed} (the paper's limits)")
    # Keras Tuner's choices hold one type: ints, or floats if any is not whole.
    value = {float(v) for v in value}
    if all(v.is_integer() for v in value):
        value = {int(v) for v in value}
    return tuple(sorted(value))
