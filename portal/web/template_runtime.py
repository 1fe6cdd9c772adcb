"""Two of Jinja2's per-value costs, taken out of every page with the same output.

- **Writing a value.** Under autoescape Jinja2 writes each `{{ value }}` as `escape(value)`, and markupsafe's
  `escape` wraps every result in a new `Markup`: a Python-level `__new__` and a `hasattr(…, "__html__")` a value. In
  an output position that wrapper is thrown away at once, since the template only joins the pieces into one string
  (and wraps a whole macro, `{% set %}` or `{% filter %}` block in one Markup of its own). `OutputCodeGenerator`
  writes values through `escape_output`, which returns the same escaped text without the wrapper.
- **Calling a function.** Jinja2 calls every `name(…)` of a template through `Context.call`, which looks twice for
  `pass_context` and friends and removes its own keyword arguments, in Python, on every call. `PortalContext` does the
  same in two built-in look-ups when the callable takes no context (our globals and macros).

A purchases page writes about 560 values and makes about 130 calls: together these render it 12-13% faster
(bench/README.md, issue 17), and the tests compare every byte with Jinja2's own.
"""

from __future__ import annotations

from typing import Any

from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Expr, Template
from jinja2.runtime import Context
from markupsafe import Markup, escape

try:  # the C function markupsafe's own escape() wraps (markupsafe 3)
    from markupsafe import _escape_inner as _escape_text
except ImportError:  # pragma: no cover - an older markupsafe: the same text through its public escape()

    def _escape_text(text: str, /) -> str:
        return str(escape(text))


def escape_output(value: Any) -> str:
    """`escape(value)` as text: the same characters, for a template to join into its output."""
    kind = type(value)
    if kind is str:
        return _escape_text(value)
    if kind is Markup:
        return value  # already safe: escape() would copy it into a new Markup
    if kind is int:
        return str(value)  # digits and a sign: nothing to escape
    return escape(value)  # __html__, other types, subclasses of str: markupsafe decides


class OutputCodeGenerator(CodeGenerator):
    """Jinja2's code generator, writing values through `escape_output` where it would write `escape`."""

    def visit_Template(self, node: Template, frame: Frame | None = None) -> None:
        self.writeline(f"from {__name__} import escape_output")
        super().visit_Template(node, frame)

    def _output_child_pre(self, node: Expr, frame: Frame, finalize: Any) -> None:
        # As CodeGenerator._output_child_pre (Jinja2 3.1), with escape_output for escape.
        if frame.eval_ctx.volatile:
            self.write("(escape_output if context.eval_ctx.autoescape else str)(")
        elif frame.eval_ctx.autoescape:
            self.write("escape_output(")
        else:
            self.write("str(")
        if finalize.src is not None:
            self.write(finalize.src)


class PortalContext(Context):
    """Jinja2's render context, calling a callable that takes no context without Context.call's checks."""

    def call(__self, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805  # Jinja2's own signature
        if (
            getattr(__obj, "jinja_pass_arg", None) is not None
            or getattr(getattr(__obj, "__call__", None), "jinja_pass_arg", None) is not None  # noqa: B004
        ):
            return super().call(__obj, *args, **kwargs)  # pass_context and friends: Jinja2 passes what they ask
        if kwargs:  # the template's loop and block variables, which only a context-taking callable reads
            kwargs.pop("_loop_vars", None)
            kwargs.pop("_block_vars", None)
        try:
            return __obj(*args, **kwargs)
        except StopIteration:  # as Context.call: a generator's end must not stop the template's own
            return __self.environment.undefined(
                "value was undefined because a callable raised a StopIteration exception"
            )
