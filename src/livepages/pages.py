"""Pages: classes whose annotated fields are their path and query parameters.

::

    @app.page("/products/{id}")
    class Product(Page):
        id: int                 # in the path
        tab: str = "details"    # not in the path: a query parameter

        async def render(self) -> str:
            return self.template("product.html", product=await db.product(self.id))

``Page`` is a ``dataclass_transform`` base, so ``Product(id=3).url`` is checked by
mypy: a wrong name or type is a type error. At run time each subclass becomes a
keyword-only dataclass.
"""

from __future__ import annotations

import contextvars
import dataclasses
import typing
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, dataclass_transform

from markupsafe import Markup
from starlette.convertors import PathConvertor
from starlette.routing import compile_path

from livepages.params import Converter, ParamError, converter_for, parse_param
from livepages.registration import Kind, RegistrationError

__all__ = ["Page", "PageSpec", "page_spec", "root_path", "url", "within_mount"]

P = TypeVar("P", bound="Page")

#: The mount prefix of the app serving the current request, so that URLs built
#: while handling it point inside the mount (``/admin/products/3``).
root_path: contextvars.ContextVar[str] = contextvars.ContextVar("livepages_root_path", default="")


def within_mount(url: str, root: str | None = None) -> str:
    """An app-absolute URL ("/signin") inside the mount ("/notes/signin").

    ``root`` is the mount prefix; by default that of the request being handled.
    Relative and absolute-with-scheme URLs are left as they are.
    """
    if not url.startswith("/") or url.startswith("//"):
        return url
    return (root_path.get() if root is None else root) + url


@dataclass_transform(kw_only_default=True)
class Page:
    """Base class of pages. Subclasses define ``render`` (and optionally ``head``).

    ``render`` returns the page body: a ``str``, ``markupsafe.Markup`` or any object
    with ``__html__`` (htpy elements). Its parameters are injected by annotation
    (``Request``, ``Session``, ``Tab``). ``title()`` and ``head()`` feed the
    document shell.
    """

    __page_spec__: ClassVar[PageSpec]
    #: Whether the page keeps a live stream open (set False for static pages).
    live: ClassVar[bool] = True
    #: Keep streaming while the browser tab is hidden (Datastar closes it by default).
    live_when_hidden: ClassVar[bool] = False
    #: Only signed-in users: others are sent to the sign-in page (actions answer 403).
    auth: ClassVar[bool] = False
    #: A presence topic over the page's fields (``"chat.{room}"``): every open stream
    #: of the page makes its visitor a member of it (see ``livepages.presence``).
    presence: ClassVar[str | None] = None
    #: Signals the page keeps when it reloads for a new build (``livepages.builds``):
    #: ``("draft", "form.text")``; their values survive the reload.
    kept_signals: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(kw_only=True)(cls)

    @property
    def url(self) -> str:
        """This page's URL, with non-default query parameters."""
        return page_spec(type(self)).url_for(self)

    @property
    def params(self) -> dict[str, Any]:
        """The page's parameters by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def title(self) -> str:
        """The document title; the app's ``settings.title`` unless overridden."""
        return ""

    def head(self) -> str:
        """Extra trusted HTML for this page's ``<head>`` (stylesheets, meta tags)."""
        return ""

    def template(self, name: str, /, **context: Any) -> Markup:
        """Render a Jinja2 template of the app with ``page=self`` in its context."""
        spec = page_spec(type(self))
        if spec.app is None:
            raise RuntimeError(f"{type(self).__name__} is not registered with an app")
        return Markup(spec.app.templates.render(name, page=self, **context))  # noqa: S704


@dataclass(eq=False)
class PageSpec:
    """What livepages knows about one registered page class."""

    cls: type[Page]
    path: str
    app: Any = None
    converters: dict[str, Converter] = field(default_factory=dict)
    path_params: tuple[str, ...] = ()
    #: Path parameters declared ``{name:path}``, whose values may contain "/".
    slash_params: frozenset[str] = frozenset()
    query_params: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)
    _format: str = ""

    @classmethod
    def build(cls, page: type[Page], path: str) -> PageSpec:
        """Inspect ``page`` against its route ``path``; TypeError on mismatches."""
        if not path.startswith("/"):
            raise ValueError(f"page paths start with '/': {path!r}")
        _, path_format, convertors = compile_path(path)
        hints = typing.get_type_hints(page, include_extras=True)
        fields = {f.name: f for f in dataclasses.fields(page)}  # type: ignore[arg-type]
        in_path = tuple(_path_names(path))
        for name in in_path:
            if name not in fields:
                raise RegistrationError(
                    f"{page.__name__}: path parameter {{{name}}} has no field",
                    page,
                    kind=Kind.DEFINITION,
                )
        for name in fields:
            # A field named "title" would replace Page.title() and break every render.
            if name in _RESERVED:
                raise RegistrationError(
                    f"{page.__name__}: a parameter cannot be named {name!r}",
                    page,
                    kind=Kind.DEFINITION,
                    member=name,
                )
        spec = cls(page, path, _format=path_format, path_params=in_path)
        spec.slash_params = frozenset(
            name for name, conv in convertors.items() if isinstance(conv, PathConvertor)
        )
        spec.query_params = tuple(n for n in fields if n not in in_path)
        for name, f in fields.items():
            spec.annotations[name] = hints[name]
            try:
                spec.converters[name] = converter_for(hints[name])
            except TypeError as exc:
                message = f"{page.__name__}: parameter {name!r}: {exc}"
                raise RegistrationError(message, page, kind=Kind.PARAMETER, member=name) from None
            if f.default is not dataclasses.MISSING:
                spec.defaults[name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                spec.defaults[name] = f.default_factory()
        page.__page_spec__ = spec
        return spec

    def instance(self, path_params: Mapping[str, str], query: Mapping[str, str]) -> Page:
        """Build the page from a request's raw parameters (400 naming a bad one)."""
        values: dict[str, Any] = {}
        for name in self.path_params:
            values[name] = parse_param(name, path_params[name], self.converters[name])
        for name in self.query_params:
            text = query.get(name)
            if text == "" and self.annotations[name] is not str:
                text = None  # an empty <input> in a GET form: no value, not a bad one
            if text is not None:
                values[name] = parse_param(name, text, self.converters[name])
            elif name not in self.defaults:
                raise ParamError(f"missing query parameter {name!r}")
        return self.cls(**values)

    def path_for(self, page: Page, suffix: str = "") -> str:
        """The path part of the page's URL (mount prefix included) plus ``suffix``."""
        parts = {name: self._path_segment(page, name) for name in self.path_params}
        path = self._format.format(**parts)
        if suffix:
            path = path.rstrip("/") + suffix
        return root_path.get() + path

    def _path_segment(self, page: Page, name: str) -> str:
        text = self.converters[name].format(getattr(page, name))
        # The router matches the decoded path, so "%2F" would split the segment and
        # "" would leave it out: either way the link would lead to a 404.
        if not text or ("/" in text and name not in self.slash_params):
            raise ValueError(
                f"{self.cls.__name__}: path parameter {name!r} cannot be {text!r} "
                f"(empty or containing '/'; use {{{name}:path}} to allow slashes)"
            )
        return urllib.parse.quote(text, safe="")

    def query_for(self, page: Page) -> str:
        """``?a=1&b=2`` for the query parameters that differ from their defaults."""
        items = []
        for name in self.query_params:
            value = getattr(page, name)
            if name in self.defaults and value == self.defaults[name]:
                continue
            if value is None:
                continue
            items.append((name, self.converters[name].format(value)))
        return "?" + urllib.parse.urlencode(items) if items else ""

    def url_for(self, page: Page, suffix: str = "") -> str:
        """The full URL of the page, or of one of its endpoints with ``suffix``."""
        return self.path_for(page, suffix) + self.query_for(page)


#: Names that Page itself uses (url, params, title, head, template, ...).
_RESERVED = frozenset(name for name in dir(Page) if not name.startswith("_"))


def _path_names(path: str) -> list[str]:
    names = []
    for piece in path.split("{")[1:]:
        names.append(piece.split("}", 1)[0].split(":", 1)[0])
    return names


def page_spec(cls: type[Page]) -> PageSpec:
    """The spec of a registered page class; LookupError if it is not registered."""
    spec = cls.__dict__.get("__page_spec__")
    if spec is None:
        raise LookupError(f"{cls.__name__} is not registered as a page (use @app.page)")
    return typing.cast(PageSpec, spec)


def url(page: type[P] | P, /, **params: Any) -> str:
    """The URL of a page: ``url(Product, id=3)`` or ``url(Product(id=3))``.

    Parameters are checked at run time, so a template with a wrong name or type
    fails loudly (in Python code prefer ``Product(id=3).url``, which mypy checks).
    """
    if isinstance(page, Page):
        if params:
            raise TypeError("url(page_instance) takes no parameters")
        return page.url
    if not (isinstance(page, type) and issubclass(page, Page)):
        raise TypeError(f"url() takes a page class or instance, not {page!r}")
    spec = page_spec(page)
    for name, value in params.items():
        if name not in spec.converters:
            raise TypeError(f"{page.__name__} has no parameter {name!r}")
        _check_type(page.__name__, name, spec.annotations[name], value)
    try:
        return page(**params).url
    except TypeError as exc:
        raise TypeError(f"url({page.__name__}): {exc}") from None


def _check_type(page: str, name: str, annotation: Any, value: Any) -> None:
    base = annotation
    if typing.get_origin(base) is typing.Annotated:
        if any(isinstance(extra, Converter) for extra in base.__metadata__):
            return  # a custom converter decides what it accepts
        base = typing.get_args(base)[0]  # other metadata (``Reflect``) leaves the type as is
    if typing.get_origin(base) is not None:
        args = [a for a in typing.get_args(base) if isinstance(a, type)]
        if any(isinstance(value, a) for a in args):
            return
    elif isinstance(base, type) and isinstance(value, base):
        if not (base is int and isinstance(value, bool)):
            return
    elif base is float and isinstance(value, int):
        return
    raise TypeError(
        f"url({page}): parameter {name!r} must be {getattr(base, '__name__', base)}, "
        f"got {type(value).__name__}"
    )
