"""sanitize.py: HTML from mail made safe to show. Pure.

nh3 (the Rust ammonia sanitizer) keeps an allow-list of tags, attributes, URL schemes
and CSS properties; everything else (scripts, event handlers, forms, frames, SVG and
MathML, `javascript:` and `data:` URLs, <style> blocks) is dropped. The result is still
only ever shown inside a sandboxed frame under a Content-Security-Policy that allows no
script and, unless the agent asks, no remote image (app.py), so a sanitizer bug alone
does not run anything.
"""

from __future__ import annotations

import nh3

_TAGS = set(nh3.ALLOWED_TAGS) | {"font"}
_LAYOUT = {"align", "valign", "width", "height", "border", "bgcolor", "color", "dir", "lang"}
_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "title", *_LAYOUT},
    "font": {"face", "size", "color"},
    "table": {"cellpadding", "cellspacing", "summary"},
    "td": {"colspan", "rowspan", "nowrap"},
    "th": {"colspan", "rowspan", "scope"},
    "img": {"src", "alt", "width", "height"},
    "a": {"href", "title"},
}
_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data"}
# Presentation only: nothing positions content over the page or loads a resource.
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "text-align", "text-decoration", "text-indent", "text-transform",
    "line-height", "letter-spacing", "white-space", "vertical-align", "direction",
    "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left",
    "border-color", "border-style", "border-width", "border-collapse", "border-spacing",
    "border-radius", "width", "max-width", "min-width", "height", "list-style-type",
}  # fmt: skip


def clean_html(html: str, *, remote_images: bool = False) -> str:
    """The mail's HTML with only harmless markup left. Remote images are removed unless
    asked for: loading one tells the sender the mail was read, and when."""
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "noscript", "template", "textarea"},
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        filter_style_properties=_STYLE_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        attribute_filter=_with_images if remote_images else _without_remote_images,
    )


def _with_images(tag: str, attribute: str, value: str) -> str | None:
    # data: only as an inline picture; a data: link would open a page of the sender's.
    if attribute in ("href", "src") and value.strip().lower().startswith("data:"):
        return value if tag == "img" and _is_image_data(value) else None
    return value


def _without_remote_images(tag: str, attribute: str, value: str) -> str | None:
    if (
        tag == "img"
        and attribute == "src"
        and not value.strip().lower().startswith(("data:", "cid:"))
    ):
        return None
    return _with_images(tag, attribute, value)


def _is_image_data(value: str) -> bool:
    kind = value.strip()[5:].split(";", 1)[0].split(",", 1)[0].lower()
    return kind.startswith("image/") and "svg" not in kind
