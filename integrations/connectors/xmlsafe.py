"""Streaming XML that refuses what a supplier never needs to send: any DTD (so no entity tricks such
as the billion-laughs bomb or external entities), network access, and oversized text nodes."""
import codecs
import re
from typing import BinaryIO, Iterator

from lxml import etree

from .base import MessageRefused

PEEK = 64 * 1024
_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class _Peeked:
    """A reader that gives back the bytes already peeked before the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self.head, self.rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size is None or size < 0:
                data, self.head = self.head + self.rest.read(), b""
                return data
            data, self.head = self.head[:size], self.head[size:]
            return data
        return self.rest.read(size)


def _prolog_text(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head.decode("utf-16", errors="ignore")
    return head.decode("latin-1")  # ASCII-compatible encodings: markup characters are ASCII


def iterparse(stream: BinaryIO, tags: set[str]) -> Iterator[tuple[str, str, etree._Element]]:
    """(event, local name, element) for ``start`` of every element and ``end`` of those in ``tags``.
    Elements are freed after their end event: memory stays flat however long the message is."""
    head = stream.read(PEEK)
    if not head.strip():
        raise MessageRefused("The message is empty.")
    if _DTD.search(_prolog_text(head)):
        raise MessageRefused("The message declares a DTD or entities; suppliers' messages never need one, "
                             "and it is how XML bombs work. Refused.")
    parser = etree.iterparse(_Peeked(head, stream), events=("start", "end"), resolve_entities=False,
                             no_network=True, load_dtd=False, huge_tree=False, remove_comments=True,
                             remove_pis=True)
    try:
        for event, element in parser:
            tag = element.tag
            if not isinstance(tag, str):
                continue
            name = tag.rpartition("}")[2]
            if event == "start":
                yield event, name, element
            elif name in tags:
                yield event, name, element
                element.clear(keep_tail=False)
                parent = element.getparent()
                if parent is not None:
                    while element.getprevious() is not None:
                        del parent[0]
    except etree.XMLSyntaxError as exc:
        raise MessageRefused(f"Malformed or cut-off XML: {exc}") from None
    except (UnicodeDecodeError, LookupError) as exc:
        raise MessageRefused(f"The message's bytes do not match its declared encoding: {exc}") from None


def local(element: etree._Element, name: str) -> etree._Element | None:
    """The first child or descendant element with this local name (any namespace)."""
    for found in element.iter(f"{{*}}{name}", name):
        return found
    return None


def local_all(element: etree._Element, name: str) -> list[etree._Element]:
    return list(element.iter(f"{{*}}{name}", name))


def snippet(element: etree._Element, limit: int = 2000) -> str:
    return etree.tostring(element, encoding="unicode")[:limit]
