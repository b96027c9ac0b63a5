"""The pages the targets serve: each has a counter in it, and may greet a viewer.

All targets render the same HTML so that they send the same bytes, and the load
client finds the counter in an event with :func:`find_counter`. The counter is
the root's first attribute so that the search stops early in the event.

Two pages (``--page``, passed to each server as ``$FANOUT_PAGE``):

- ``board``: a 2.7 KB single line of cells, built with an f-string;
- ``site``: a realistic page of about 5 KB rendered by a Jinja2 template: a
  header with navigation and the viewer's name, and a product table.

A personalised target renders each stream's page with that stream's viewer
name (:func:`viewer_name`); a shared one renders it once with no name.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from functools import cache
from html import escape

import jinja2

from benchmarks.pages import context  # the catalog the pages benchmark renders

__all__ = [
    "COUNTER_MARK",
    "PAGE_ENV",
    "PageName",
    "Renderer",
    "current_page",
    "find_counter",
    "render",
    "render_site",
    "renderer",
    "viewer_name",
]

COUNTER_MARK = b'data-counter="'

# The cells never change: only the counter does, as in a real page where one
# value moves in a large view (and which is what makes compression pay).
_CELLS = "".join(f'<li class="cell" id="cell-{i:02d}">cell {i:02d}</li>' for i in range(62))


#: The environment variable that tells a target's server process which page to serve.
PAGE_ENV = "FANOUT_PAGE"

#: ``renderer(page)(counter, viewer)``: the page's HTML; ``viewer`` is "" for everyone.
Renderer = Callable[[int, str], str]


class PageName(enum.Enum):
    """The pages a run can serve."""

    BOARD = "board"
    SITE = "site"


def render(counter: int, viewer: str = "") -> str:
    """The board for ``counter``: one element with ``id="board"``, about 2.7 KB, one line."""
    title = f"Counter for {escape(viewer)}" if viewer else "Counter"
    return (
        f'<div id="board" data-counter="{counter}">'
        f'<h1>{title} <span id="counter">{counter}</span></h1>'
        f'<ul class="cells">{_CELLS}</ul></div>'
    )


#: The site page: a header that names the viewer, navigation, a product table.
SITE = """\
<div id="site" data-counter="{{ counter }}">
<header class="top">
<a class="brand" href="/">Shop</a>
<nav><a href="/catalog">Catalog</a> <a href="/deals">Deals</a> <a href="/orders">Orders</a> \
<a href="/help">Help</a></nav>
{% if viewer %}
<div class="account">Signed in as <strong id="viewer">{{ viewer }}</strong> \
<a href="/account">Account</a> <a href="/logout">Sign out</a></div>
{% else %}
<div class="account"><a href="/login">Sign in</a></div>
{% endif %}
</header>
<h1>Catalog <span id="counter">{{ counter }}</span></h1>
<p>{{ products|length }} products, {{ in_stock }} in stock.</p>
<table>
<thead><tr><th>#</th><th>Name</th><th>Price</th><th>Stock</th><th>Tags</th></tr></thead>
<tbody>
{% for product in products %}
<tr id="product-{{ product.id }}" class="{{ loop.cycle('odd', 'even') }}">\
<td>{{ product.id }}</td><td>{{ product.name }}</td>\
<td>{{ "%.2f"|format(product.price) }} €</td><td>{{ product.stock }}</td>\
<td>{{ product.tags|join(", ") }}</td></tr>
{% endfor %}
</tbody>
</table>
<footer>{{ products|length }} shown</footer>
</div>"""


@cache
def _site() -> jinja2.Template:
    # The options livepages' Templates uses, so every target sends the same HTML.
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(SITE)


def render_site(counter: int, viewer: str = "") -> str:
    """The site page for ``counter``, greeting ``viewer`` (nobody when "")."""
    return _site().render(counter=counter, viewer=viewer, **context())


def renderer(page: PageName) -> Renderer:
    """The function that renders ``page``."""
    return render_site if page is PageName.SITE else render


def current_page() -> PageName:
    """The page this server process serves: ``$FANOUT_PAGE``, the board by default."""
    return PageName(os.environ.get(PAGE_ENV, PageName.BOARD.value))


def viewer_name(index: int) -> str:
    """The name of the ``index``-th viewer a personalised target greets."""
    return f"Viewer {index} <{index % 97}>"  # markup in it: escaping is part of the cost


def find_counter(data: bytes, start: int = 0, end: int | None = None) -> int | None:
    """The counter in ``data[start:end]`` (one event), or None when it has none."""
    stop = len(data) if end is None else end
    i = data.find(COUNTER_MARK, start, stop)
    if i < 0:
        return None
    i += len(COUNTER_MARK)
    j = data.find(b'"', i, stop)
    if j < 0:
        return None
    digits = data[i:j]
    return int(digits) if digits.isdigit() else None
