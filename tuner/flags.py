"""Command-line text to values, and errors in the user's own words."""

import math
import re

_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


def number(text, name, integer=False):
    m = re.fullmatch(r"\s*([-+]?[0-9.]+(?:e[-+]?[0-9]+)?)\s*([kKmMgG]?)\s*", str(text))
    try:
        value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    except (AttributeError, ValueError):
        raise ValueError(f"Invalid `--{name}`: {text!r}. Expected a number "
                         "(suffixes K, M, G allowed).") from None
    if not math.isfinite(value):
        raise ValueError(f"Invalid `--{name}`: {text!r}. Expected a finite number.")
    if integer:
        if not value.is_integer():
            raise ValueError(f"Invalid `--{name}`: {text!r}. Expected an integer.")
        return int(value)
    return value


def parse_range(text, name, integer=False):
    """`"12-28"` -> `(12, 28)`; `"13"` -> `13`; `"200M-"` -> `(2e8, None)`."""
    parts = re.split(r"(?<![eE])-", text)
    if len(parts) == 1:
        return number(parts[0], name, integer)
    if len(parts) != 2 or not any(p.strip() for p in parts):
        raise ValueError(f"Invalid `--{name}`: {text!r}. Expected LO-HI, "
                         "LO- or -HI (e.g. 200M-400M) or a single number.")
    lo, hi = (number(p, name, integer) if p.strip() else None for p in parts)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"Invalid `--{name}`: {text!r}. Expected LO-HI with "
                         "LO <= HI.")
    return lo, hi


def in_user_words(error, flags):
    """`error` of a design space (`Invalid `depth`: (1, 100000). Expected
    ...`) restated with the flag and what the user typed, where `flags`
    (config key -> the flag's text) has its name."""
    m = re.match(r"Invalid `(\w+)`: .*?\. (Expected .*)$", str(error), re.S)
    if not m or m.group(1) not in flags:
        return error
    expected = m.group(2).replace("`(lo, hi)`", "LO-HI")
    return ValueError(f"Invalid `--{m.group(1).replace('_', '-')}`: "
                      f"{flags[m.group(1)]!r}. {expected}")


def parse_choices(text, name, integer=True):
    """`"1,2,4"` -> `[1, 2, 4]`; `"8"` -> `8`; `"0.25,0.5"` with
    `integer=False` -> `[0.25, 0.5]`."""
    values = [number(p, name, integer=integer) for p in text.split(",")]
    return values[0] if len(values) == 1 else values


def attach_open_ranges(argv):
    """`--flops -20M` -> `--flops=-20M`: argparse takes a value starting with
    '-' for an option."""
    out, i = [], 0
    while i < len(argv):
        if (argv[i].startswith("--") and "=" not in argv[i] and i + 1 < len(argv)
                and re.fullmatch(r"-[0-9.][0-9.eE+-]*[kKmMgG]?", argv[i + 1])):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out
