"""Form bodies, read strictly: bounded size, UTF-8 only, a few known fields.

>>> parse_form(b"csrf=abc&reason=caf%C3%A9")
{'csrf': 'abc', 'reason': 'café'}
>>> parse_form(b"reason=%FF")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
FormError: the form is not valid UTF-8
"""

from __future__ import annotations

from urllib.parse import parse_qsl

MAX_FORM_BYTES = 8192
MAX_FIELDS = 16


class FormError(ValueError):
    """A form that is refused as a whole (answered with 400)."""


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of an ``application/x-www-form-urlencoded`` body (the last of a repeated
    name wins)."""
    if len(body) > MAX_FORM_BYTES:
        raise FormError("the form is too large")
    try:
        text = body.decode("ascii")  # urlencoded bodies are ASCII; the values are %-escaped
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError as exc:
        raise FormError("the form is not valid UTF-8") from exc
    except ValueError as exc:
        raise FormError(str(exc)) from exc
    return dict(pairs)
