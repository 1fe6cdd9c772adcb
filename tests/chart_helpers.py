"""Reading the SVG charts out of a page: each `<svg>` parsed as XML on its own, its bars, its title, and the check
that it points nowhere outside itself (no link, no image, no script, no inline style: strict CSP)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
_SVG_BLOCK = re.compile(r"<svg\b.*?</svg>", re.DOTALL)
FORBIDDEN_TAGS = {"script", "image", "use", "foreignObject", "style", "a", "iframe"}


def charts_in(html: str) -> dict[str, ET.Element]:
    """Every chart of the page by id (the id its title carries): parsing fails on an SVG that is not well-formed."""
    charts = {}
    for block in _SVG_BLOCK.findall(html):
        svg = ET.fromstring(block)  # noqa: S314  (our own page, parsed to check it is well-formed)
        title = svg.find(f"{SVG}title")
        assert title is not None and title.get("id", "").endswith("-title"), block[:200]
        charts[title.get("id", "").removesuffix("-title")] = svg
    return charts


def title_of(svg: ET.Element) -> str:
    return (svg.findtext(f"{SVG}title") or "").strip()


def description_of(svg: ET.Element) -> str:
    return (svg.findtext(f"{SVG}desc") or "").strip()


def rects(svg: ET.Element, css_class: str) -> list[ET.Element]:
    """The rectangles carrying `css_class` among their classes, in document order."""
    return [r for r in svg.iter(f"{SVG}rect") if css_class in (r.get("class") or "").split()]


def size(rect: ET.Element, attribute: str) -> float:
    return float(rect.get(attribute, "nan"))


def external_references(svg: ET.Element) -> list[str]:
    """Anything that would make the browser fetch or run something, or that the CSP would refuse."""
    problems = []
    for element in svg.iter():
        tag = element.tag.removeprefix(SVG)
        if tag in FORBIDDEN_TAGS:
            problems.append(f"<{tag}>")
        for name, value in element.attrib.items():
            local = name.rsplit("}", 1)[-1]
            if local in {"href", "src", "style"} or local.startswith("on") or "url(" in value:
                problems.append(f"<{tag} {local}={value!r}>")
    return problems


def assert_proportional(lengths: list[float], values: list[float]) -> None:
    """Bars as long as their values, to the hundredth of a unit the geometry is rounded to."""
    assert len(lengths) == len(values)
    biggest = max(values)
    longest = lengths[values.index(biggest)]
    for length, value in zip(lengths, values, strict=True):
        assert abs(length - value / biggest * longest) <= 0.02, (lengths, values)


_BOX = re.compile(r"M(-?[\d.]+) (-?[\d.]+)h(-?[\d.]+)v(-?[\d.]+)h-?[\d.]+z")


def path_boxes(svg: ET.Element, css_class: str) -> list[tuple[float, float, float, float]]:
    """The rectangles (x, y, width, height) drawn by the paths carrying `css_class`, one sub-path each."""
    boxes = []
    for path in svg.iter(f"{SVG}path"):
        if css_class in (path.get("class") or "").split():
            d = path.get("d", "")
            found = [tuple(map(float, m)) for m in _BOX.findall(d)]
            assert "".join(m.group(0) for m in _BOX.finditer(d)) == d, f"not only rectangles: {d[:80]}"
            boxes += found
    return boxes  # type: ignore[return-value]
